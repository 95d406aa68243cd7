"""Precision, recall and F1 against the confidence threshold, per class, at IoU 0.5.

Each detection is matched greedily (highest score first, per image and class) to the unmatched ground-truth box of
its class with the highest IoU >= 0.5 (torchvision's ``box_iou``). A detection is then a true positive or not, so
for any confidence ``c`` the detections scoring ``>= c`` give precision ``TP / detections`` and recall ``TP / ground
truth``. This is how detection tools report P and R beside mAP: at the one confidence that maximises the mean F1 over
classes (mAP itself comes from the COCO evaluator).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import box_iou

from kdinspect.data.structures import Detections

__all__ = ["ConfidenceCurves", "confidence_curves", "match_detections"]


def match_detections(
    preds: Sequence[Detections], gt_boxes: Sequence[np.ndarray], gt_labels: Sequence[np.ndarray], iou: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores, labels and true-positive flags of every detection (greedy matching at ``iou``)."""
    scores, labels, tps = [], [], []
    for det, boxes, lab in zip(preds, gt_boxes, gt_labels):
        s, lb = det.scores.float().cpu().numpy(), det.labels.cpu().numpy()
        tp = np.zeros(len(s), bool)
        for c in np.unique(lb):
            d_idx = np.flatnonzero(lb == c)
            d_idx = d_idx[np.argsort(-s[d_idx], kind="stable")]
            g = np.asarray(boxes, np.float32).reshape(-1, 4)[np.asarray(lab) == c]
            if len(g) == 0:
                continue
            ious = box_iou(det.boxes[torch.as_tensor(d_idx)].float().cpu(), torch.as_tensor(g)).numpy()
            taken = np.zeros(len(g), bool)
            for row, i in enumerate(d_idx):
                cand = np.where(taken, -1.0, ious[row])
                j = int(cand.argmax())
                if cand[j] >= iou:
                    taken[j], tp[i] = True, True
        scores.append(s)
        labels.append(lb)
        tps.append(tp)
    return _cat(scores, np.float64), _cat(labels, np.int64), _cat(tps, bool)


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


@dataclass
class ConfidenceCurves:
    """``precision``, ``recall``, ``f1``: (K classes, C confidences); ``conf``: (C,); ``n_gt``: (K,)."""

    conf: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    n_gt: np.ndarray

    @property
    def best_index(self) -> int:
        """The confidence index that maximises the mean F1 over classes with ground truth."""
        has = self.n_gt > 0
        mean = self.f1[has].mean(0) if has.any() else np.zeros_like(self.conf)
        return int(mean.argmax())


def confidence_curves(
    preds: Sequence[Detections],
    gt_boxes: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    num_classes: int,
    iou: float = 0.5,
    points: int = 101,
) -> ConfidenceCurves:
    """P, R and F1 of each class at ``points`` confidences from 0 to 1."""
    scores, labels, tp = match_detections(preds, gt_boxes, gt_labels, iou)
    n_gt = np.bincount(np.concatenate([np.asarray(lb, np.int64).ravel() for lb in gt_labels]), minlength=num_classes)
    conf = np.linspace(0.0, 1.0, points)
    p = np.zeros((num_classes, points))
    r = np.zeros((num_classes, points))
    for k in range(num_classes):
        s, t = scores[labels == k], tp[labels == k]
        order = np.argsort(-s, kind="stable")
        s, t = s[order], t[order]
        kept = np.searchsorted(-s, -conf, side="right")  # detections with score >= conf
        tps = np.concatenate([[0], np.cumsum(t)])[kept]
        p[k] = np.where(kept > 0, tps / np.maximum(kept, 1), 0.0)  # no detection left: precision 0 (nothing found)
        r[k] = tps / n_gt[k] if n_gt[k] > 0 else 0.0
    f1 = 2 * p * r / np.maximum(p + r, 1e-12)
    return ConfidenceCurves(conf, p, r, f1, n_gt[:num_classes])
