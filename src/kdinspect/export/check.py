"""Accuracy check of exported models on a validation subset: the PyTorch model vs the deployed runtime, end to end.

"Before" is the training-side prediction path (dataset transform -> eager model); "after" is exactly what a user
deploys: the original file decoded with OpenCV, resized and run by :class:`kdinspect.deploy.OrtModel`, results
mapped back to image pixels. Both are scored by the project's evaluators on the same images, so pre-processing
differences count too (a classic source of "accuracy dropped after export").
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from kdinspect.engine.checkpoint import LoadedModel

__all__ = ["load_val_subset", "metric_check"]

logger = logging.getLogger(__name__)


def load_val_subset(loaded: LoadedModel, n: int, split: str = "val") -> list[Any]:
    """Up to ``n`` readable samples spread evenly over the ``split`` dataset of the checkpoint's config."""
    from kdinspect.data import build_dataset

    cfg = loaded.cfg
    # images and labels only: soft labels of an offline-distilled student are training-time inputs, not needed here
    data = dataclasses.replace(cfg.data, params={k: v for k, v in cfg.data.params.items() if k != "soft_labels"})
    try:
        ds = build_dataset(
            data, split, loaded.kind, train=False, seed=cfg.train.seed, run_dir=cfg.run_dir, classes=loaded.classes
        )
    except (FileNotFoundError, KeyError, ValueError) as err:
        raise FileNotFoundError(
            f"the export check needs the {split} images of {cfg.data.root} ({err}); pass --data-root DIR"
        ) from err
    if len(ds) == 0:
        raise ValueError(f"the {split} split of {cfg.data.root} is empty")
    idx = np.unique(np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int))
    samples = [ds[int(i)] for i in idx]
    return [s for s in samples if s]


def _gt(sample: Any) -> Any:
    from kdinspect.evaluation.detection import GroundTruth

    sy, sx = sample.meta.scale
    boxes = sample.target.boxes.numpy().astype(np.float64) / np.array([sx, sy, sx, sy])
    h, w = sample.meta.orig_size
    return GroundTruth(sample.meta.image_id, w, h, boxes, sample.target.labels.numpy())


def _score(kind: str, preds: list[Any], samples: list[Any], classes: list[str]) -> dict[str, float]:
    if kind == "detection":
        from kdinspect.evaluation.detection import evaluate_detections

        return evaluate_detections(preds, [_gt(s) for s in samples], classes)
    from kdinspect.evaluation.segmentation import SegmentationMeter

    meter = SegmentationMeter()
    for prob, s in zip(preds, samples):
        meter.update(prob, s.target.mask > 0.5)
    return meter.compute()


def _runtime_pred(kind: str, result: Any, sample: Any) -> Any:
    from kdinspect.data.structures import Detections

    if kind == "detection":
        return Detections(
            torch.from_numpy(result.boxes), torch.from_numpy(result.scores), torch.from_numpy(result.labels)
        )
    import cv2

    h, w = sample.target.mask.shape
    prob = result.prob if result.prob.shape == (h, w) else cv2.resize(result.prob, (w, h))
    return torch.from_numpy(np.ascontiguousarray(prob))


@torch.no_grad()
def _torch_pred(loaded: LoadedModel, task: Any, sample: Any) -> Any:
    from kdinspect.data import collate

    batch = collate([sample])
    if loaded.kind == "detection":
        return task.predict(batch)[0]
    return loaded.model(batch.images).prob[0, 0].float()


def metric_check(
    loaded: LoadedModel,
    models: Mapping[str, Any],
    samples: list[Any],
    threads: int = 1,
) -> dict[str, Any]:
    """Score the PyTorch model and each exported model on ``samples``.

    Args:
        loaded: the checkpoint's model.
        models: name -> exported file (``.onnx`` or OpenVINO ``.xml``), run through ``OrtModel``, or an ``OrtModel``
            (give it score threshold 0 for detection metrics).
        samples: validation samples (from :func:`load_val_subset`).
        threads: runtime threads.

    Returns:
        ``{"metric": name, "images": n, "pytorch": value, "<name>": value, "delta_<name>": value - pytorch}`` with
        the main metric (mAP50 for detection, F1 for segmentation), plus ``details`` with every metric.
    """
    from kdinspect.deploy.imageio import read_image
    from kdinspect.deploy.runtime import OrtModel
    from kdinspect.tasks.build import TASKS

    task = TASKS[loaded.kind](loaded.model.eval(), loaded.classes)
    runtimes = {
        name: p if isinstance(p, OrtModel) else OrtModel(p, threads=threads, score_thr=0.0)
        for name, p in models.items()
    }
    preds: dict[str, list[Any]] = {"pytorch": [], **{name: [] for name in runtimes}}
    for sample in samples:
        preds["pytorch"].append(_torch_pred(loaded, task, sample))
        image = read_image(sample.meta.path)
        ref_path = sample.meta.extra.get("reference") if sample.reference is not None else None
        reference = None if ref_path is None else read_image(ref_path)  # the runtime registers it itself
        for name, rt in runtimes.items():
            preds[name].append(_runtime_pred(loaded.kind, rt.predict(image, reference), sample))
    metric = "mAP50" if loaded.kind == "detection" else "f1"
    details = {name: _score(loaded.kind, p, samples, loaded.classes) for name, p in preds.items()}
    report: dict[str, Any] = {"metric": metric, "images": len(samples)}
    for name, m in details.items():
        report[name] = round(float(m[metric]), 5)
        if name != "pytorch":
            report[f"delta_{name}"] = round(float(m[metric] - details["pytorch"][metric]), 5)
    report["details"] = {name: {k: round(float(v), 5) for k, v in m.items()} for name, m in details.items()}
    logger.info("metric check on %d images: %s", len(samples), {k: v for k, v in report.items() if k != "details"})
    return report
