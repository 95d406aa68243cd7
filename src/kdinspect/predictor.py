"""Predict with a PyTorch checkpoint on image files or folders: JSON results, overlays and masks."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from kdinspect.data.io import IMAGE_EXTENSIONS, ImageReadError, load_image
from kdinspect.data.structures import Batch, DetTarget, ImageMeta, SegTarget
from kdinspect.deploy.draw import draw_detections, overlay_mask
from kdinspect.deploy.imageio import list_images
from kdinspect.deploy.runtime import stored_or_default
from kdinspect.engine.checkpoint import LoadedModel, load_model
from kdinspect.tasks.build import TASKS
from kdinspect.utils.io import write_json

__all__ = ["iter_images", "predict"]

logger = logging.getLogger(__name__)


def iter_images(source: str | Path) -> list[Path]:
    """Image files named by ``source``: one file, a folder (sorted, non-recursive) or a glob pattern."""
    return list_images(source, IMAGE_EXTENSIONS)


def _transform(loaded: LoadedModel) -> Any:
    """The evaluation transform of the run, so prediction preprocesses exactly like evaluation."""
    from kdinspect.data import build_transform

    return build_transform(loaded.cfg.data, loaded.kind, train=False)


def _batches(
    files: list[Path], loaded: LoadedModel, errors: list[dict[str, Any]], reference: str | Path | None = None
) -> Iterator[tuple[Batch, np.ndarray, float]]:
    from kdinspect.data import collate
    from kdinspect.data.paired import PairedDetectionTransform
    from kdinspect.data.structures import Sample
    from kdinspect.deploy.align import align_reference
    from kdinspect.deploy.predict import reference_for

    tf = _transform(loaded)
    align = str(loaded.cfg.data.params.get("align", "none"))
    for path in files:
        t0 = time.perf_counter()
        try:
            image = load_image(path)
            ref = None if reference is None else load_image(reference_for(path, reference))
        except (ImageReadError, FileNotFoundError) as err:
            reason = err.reason if isinstance(err, ImageReadError) else str(err)
            logger.warning("skipping %s: %s", path, reason)
            errors.append({"image": str(path), "error": reason})
            continue
        h, w = image.shape[:2]
        if ref is not None:
            ref = align_reference(image, ref, align, str(path))
            if not isinstance(tf, PairedDetectionTransform):
                tf = PairedDetectionTransform(tf.imgsz, train=False)  # a run without data.params.reference
            img, ref_t, boxes, labels, scale = tf(image, ref, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
            meta = ImageMeta(str(path), path.stem, (h, w), tuple(img.shape[-2:]), scale)
            yield collate([Sample(img, DetTarget(boxes, labels), meta, ref_t)]), image, (time.perf_counter() - t0) * 1e3
            continue
        if loaded.kind == "detection":
            img, boxes, labels, scale = tf(image, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
            target: Any = DetTarget(boxes, labels)
        else:
            img, mask, _, scale = tf(image, np.zeros((h, w), np.uint8))
            target = SegTarget(mask)
        meta = ImageMeta(str(path), path.stem, (h, w), tuple(img.shape[-2:]), scale)
        batch = collate([Sample(img, target, meta)])
        yield batch, image, (time.perf_counter() - t0) * 1e3


@torch.no_grad()
def predict(
    checkpoint: str | Path,
    source: str | Path,
    out_dir: str | Path | None = None,
    score_thr: float = 0.25,
    mask_thr: float | None = None,
    save_overlays: bool = True,
    device: str = "cpu",
    overrides: Sequence[str] = (),
    reference: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Run a checkpoint on images; returns one result dict per image (and writes ``results.json``,
    ``overlays/`` and, for segmenters, ``masks/`` under ``out_dir``). Unreadable images are reported, not fatal.
    ``overrides`` change inference-time settings of the stored config (see :func:`load_model`).

    A reference-aware checkpoint needs ``reference``: one image file for every image, or a folder with one reference
    per image, same stem (:func:`kdinspect.deploy.predict.reference_for`); it is registered onto its image with the
    run's ``data.params.align``. An image without a readable reference is reported with an ``error``."""
    from kdinspect.models.pair import takes_reference

    loaded = load_model(checkpoint, device, overrides)
    if mask_thr is None:
        mask_thr = stored_or_default(loaded.mask_thr)
    if takes_reference(loaded.model) != (reference is not None):
        need = "compares each image with a reference: pass --reference FILE|DIR"
        raise ValueError(
            f"{checkpoint} " + (need if reference is None else "takes the test image only; drop --reference")
        )
    if reference is not None and not Path(reference).exists():
        raise FileNotFoundError(f"--reference {reference}: no such file or folder")
    task = TASKS[loaded.kind](loaded.model, loaded.classes)
    files = iter_images(source)
    out = Path(out_dir) if out_dir else None
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for batch, image, pre_ms in _batches(files, loaded, errors, reference):
        t1 = time.perf_counter()
        pred = task.predict(batch.to(device))[0]
        t2 = time.perf_counter()
        meta = batch.metas[0]
        res: dict[str, Any] = {"image": meta.path, "width": meta.orig_size[1], "height": meta.orig_size[0]}
        if loaded.kind == "detection":
            keep = pred.scores >= score_thr
            boxes, scores, labels = (t[keep].cpu().numpy() for t in pred)
            res["detections"] = [
                {
                    "box": [round(float(v), 2) for v in b],
                    "score": round(float(s), 4),
                    "label": int(lb),
                    "class": loaded.classes[int(lb)],
                }
                for b, s, lb in zip(boxes, scores, labels)
            ]
            vis = draw_detections(image, boxes, scores, labels, loaded.classes)
        else:
            prob = pred.prob.cpu().numpy()
            sel = prob >= mask_thr
            res |= {"defect_pixels": int(sel.sum()), "defect_ratio": round(float(sel.mean()), 6)}
            vis = overlay_mask(image, prob, mask_thr)
            if out is not None:
                (out / "masks").mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(out / "masks" / f"{Path(meta.path).stem}.png"), (sel * 255).astype(np.uint8))
                res["mask"] = str(out / "masks" / f"{Path(meta.path).stem}.png")
        if out is not None and save_overlays:
            (out / "overlays").mkdir(parents=True, exist_ok=True)
            dst = out / "overlays" / f"{Path(meta.path).stem}.jpg"
            cv2.imwrite(str(dst), cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
            res["overlay"] = str(dst)
        res["ms"] = {
            "pre": round(pre_ms, 2),
            "inference": round((t2 - t1) * 1e3, 2),
            "post": round((time.perf_counter() - t2) * 1e3, 2),
        }
        results.append(res)
    results += errors
    if out is not None:
        write_json(out / "results.json", {"checkpoint": str(checkpoint), "results": results})
    logger.info("predicted %d image(s), %d unreadable", len(results) - len(errors), len(errors))
    return results
