"""Run a task over a loader and score it with the evaluator for its kind."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from kdinspect.data.structures import Batch, Detections
from kdinspect.evaluation.detection import GroundTruth, evaluate_detections
from kdinspect.evaluation.segmentation import SegmentationMeter
from kdinspect.tasks.base import Task

__all__ = ["collect_detections", "evaluate_task"]

logger = logging.getLogger(__name__)


def _raise_nonfinite(task: Task, batch: Batch) -> None:
    """Name the images whose prediction is NaN/Inf and the model tensors that are not finite."""
    from kdinspect.engine.checkpoint import nonfinite_tensors

    images = ", ".join(m.path for m in batch.metas)
    bad = nonfinite_tensors(task.deployable().state_dict())
    why = f"non-finite weights: {'; '.join(bad[:5])}" if bad else "the weights are finite (check the input images)"
    raise FloatingPointError(f"model output is NaN/Inf for {images} ({why})")


@torch.no_grad()
def collect_detections(
    task: Task, loader: DataLoader, device: str = "cpu", progress: bool = False
) -> tuple[list[Detections], list[GroundTruth], list[str]]:
    """Predictions and ground truth (both in original pixels) of every image of ``loader``, plus unreadable files."""
    task.eval()
    preds: list[Detections] = []
    gts: list[GroundTruth] = []
    skipped: list[str] = []
    for batch in tqdm(loader, desc="validating", leave=False, disable=not progress):
        skipped += batch.skipped
        if len(batch) == 0:
            continue
        batch = batch.to(device)
        dets = [type(d)(*(t.cpu() for t in d)) for d in task.predict(batch)]
        if not all(bool(torch.isfinite(t.float()).all()) for d in dets for t in d):
            _raise_nonfinite(task, batch)
        preds += dets
        for target, meta in zip(batch.targets, batch.metas):
            sy, sx = meta.scale
            boxes = target.boxes.cpu().numpy().astype(np.float64) / np.array([sx, sy, sx, sy])
            h, w = meta.orig_size
            gts.append(GroundTruth(meta.image_id, w, h, boxes, target.labels.cpu().numpy()))
    return preds, gts, skipped


@torch.no_grad()
def evaluate_task(
    task: Task,
    loader: DataLoader,
    out_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = False,
    mask_thr: float | None = None,
) -> dict[str, float]:
    """Predict every batch of ``loader`` and compute the metrics of ``task.kind``.

    Detection ground truth is the batch target mapped back to original pixels; segmentation is scored at the
    evaluation input size (the full image unless ``data.eval_imgsz`` is set). Unreadable files are counted and
    reported as ``skipped_files``. ``mask_thr`` (segmentation: a model's stored threshold) adds the metrics at that
    threshold (``f1_thr``, ``iou_thr``, ...; :meth:`SegmentationMeter.at_threshold`) beside the 0.5 ones.
    """
    task.eval()
    skipped: list[str] = []
    if task.kind == "detection":
        preds, gts, skipped = collect_detections(task, loader, device, progress)
        metrics = evaluate_detections(preds, gts, task.classes, out_dir)
    elif task.kind == "segmentation":
        meter = SegmentationMeter()
        model = task.deployable()
        for batch in tqdm(loader, desc="validating", leave=False, disable=not progress):
            skipped += batch.skipped
            if len(batch) == 0:
                continue
            batch = batch.to(device)
            prob = model(batch.images).prob[:, 0].float().cpu()
            if not bool(torch.isfinite(prob).all()):
                _raise_nonfinite(task, batch)
            for p, target, meta in zip(prob, batch.targets, batch.metas):
                h, w = meta.input_size
                meter.update(p[:h, :w], target.mask.cpu()[:h, :w] > 0.5)
        metrics = meter.compute()
        if mask_thr is not None:
            metrics |= meter.at_threshold(mask_thr)
        if out_dir is not None:
            from kdinspect.utils.io import write_json

            write_json(Path(out_dir) / "metrics.json", metrics)
    else:
        raise ValueError(f"no evaluator for task kind {task.kind!r}; valid: ['detection', 'segmentation']")
    if skipped:
        logger.warning("evaluation skipped %d unreadable file(s): %s", len(skipped), ", ".join(skipped))
    metrics["skipped_files"] = float(len(skipped))
    return metrics
