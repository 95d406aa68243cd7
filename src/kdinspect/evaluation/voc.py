"""Pascal VOC detection AP (mmdet ``eval_map`` semantics), with base / novel / all class groups for few-shot runs.

- IoU uses legacy VOC coordinates (``+1`` on widths and heights), like mmdet's ``eval_map(use_legacy_coordinate=True)``
  that DKAN's NEU-DET evaluation calls.
- Greedy matching in descending score order: a detection is a true positive if its best-IoU ground truth (IoU >= thr)
  is not yet matched; otherwise a false positive.
- ``voc07`` = 11-point interpolated AP (max precision at recall >= 0, 0.1, ..., 1), ``area`` = VOC2010+ area under the
  monotone precision envelope.
- The mean AP of a group averages only the classes of that group that have ground truth (mmdet).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

from kdinspect.data.structures import Detections

__all__ = ["average_precision", "class_ap", "voc_ap_groups"]


def average_precision(recall: np.ndarray, precision: np.ndarray, mode: str = "voc07") -> float:
    """AP from a recall/precision curve (both (D,), ordered by descending score).

    Args:
        mode: ``voc07`` (11-point) or ``area``.
    """
    if mode == "voc07":
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            above = precision[recall >= t]
            ap += (above.max() if above.size else 0.0) / 11.0
        return float(ap)
    if mode == "area":
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        idx = np.where(mrec[1:] != mrec[:-1])[0]
        return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))
    raise ValueError(f"AP mode {mode!r} not in ['voc07', 'area']")


def _legacy(boxes: torch.Tensor) -> torch.Tensor:
    """xyxy -> xyxy with +1 on x2/y2 so that torchvision's IoU equals the legacy VOC IoU."""
    return boxes.double() + boxes.new_tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)


def class_ap(
    detections: Sequence[Detections],
    gt_boxes: Sequence[torch.Tensor | np.ndarray],
    gt_labels: Sequence[torch.Tensor | np.ndarray],
    cls: int,
    iou_thr: float = 0.5,
    mode: str = "voc07",
) -> tuple[float, int]:
    """AP of one class over a dataset.

    Args:
        detections: per image, boxes (D, 4) xyxy original pixels, scores (D,), labels (D,).
        gt_boxes: per image, (G, 4) xyxy original pixels (tensor or array).
        gt_labels: per image, (G,) class indices (tensor or array).
        cls: the class index to score.

    Returns:
        (AP, number of ground-truth boxes of the class).
    """
    scores, tps = [], []
    num_gts = 0
    for det, boxes, labels in zip(detections, gt_boxes, gt_labels):
        boxes, labels = torch.as_tensor(boxes).reshape(-1, 4), torch.as_tensor(labels).reshape(-1)
        gts = boxes[labels == cls]
        num_gts += gts.shape[0]
        keep = det.labels == cls
        d_boxes, d_scores = det.boxes[keep], det.scores[keep].double()
        if d_scores.numel() == 0:
            continue
        order = torch.argsort(d_scores, descending=True)
        d_boxes, d_scores = d_boxes[order], d_scores[order]
        tp = torch.zeros(d_scores.numel(), dtype=torch.bool)
        if gts.shape[0]:
            ious = box_iou(_legacy(d_boxes), _legacy(gts))  # (D, G)
            best_iou, best_gt = ious.max(dim=1)
            covered = torch.zeros(gts.shape[0], dtype=torch.bool)
            for i in range(d_scores.numel()):
                if best_iou[i] >= iou_thr and not covered[best_gt[i]]:
                    covered[best_gt[i]] = True
                    tp[i] = True
        scores.append(d_scores)
        tps.append(tp)
    if num_gts == 0:
        return 0.0, 0
    if not scores:
        return 0.0, num_gts
    score = torch.cat(scores).numpy()
    tp_all = torch.cat(tps).numpy()
    order = np.argsort(-score, kind="stable")
    tp_cum = np.cumsum(tp_all[order])
    fp_cum = np.cumsum(~tp_all[order])
    recall = tp_cum / num_gts
    precision = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    return average_precision(recall, precision, mode), num_gts


def voc_ap_groups(
    detections: Sequence[Detections],
    gt_boxes: Sequence[torch.Tensor | np.ndarray],
    gt_labels: Sequence[torch.Tensor | np.ndarray],
    classes: Sequence[str],
    groups: dict[str, Sequence[str]] | None = None,
    iou_thr: float = 0.5,
    mode: str = "voc07",
) -> dict[str, float]:
    """Per-class AP and group means.

    Args:
        detections: per image detections, labels index ``classes``.
        gt_boxes: per image (G, 4) ground-truth boxes in the same pixels as the detections.
        gt_labels: per image (G,) labels.
        classes: class names.
        groups: group name -> class names, e.g. ``{"base": [...], "novel": [...]}``; ``all`` is always added.

    Returns:
        ``{"AP50/<class>": ..., "AP50_<group>": ..., "AP50_all": ...}`` (fractions in [0, 1]).

    Raises:
        KeyError: a group names a class that is not in ``classes``.
    """
    if not (len(detections) == len(gt_boxes) == len(gt_labels)):
        raise ValueError(f"{len(detections)} detections vs {len(gt_boxes)} ground-truth images")
    groups = dict(groups or {})
    groups["all"] = list(classes)
    per_class: dict[str, tuple[float, int]] = {}
    for k, name in enumerate(classes):
        per_class[name] = class_ap(detections, gt_boxes, gt_labels, k, iou_thr, mode)
    tag = f"AP{round(iou_thr * 100)}"
    out = {f"{tag}/{name}": ap for name, (ap, _) in per_class.items()}
    for group, names in groups.items():
        unknown = sorted(set(names) - set(classes))
        if unknown:
            raise KeyError(f"group {group!r} names unknown classes {unknown}; classes: {list(classes)}")
        aps = [per_class[n][0] for n in names if per_class[n][1] > 0]
        out[f"{tag}_{group}"] = float(np.mean(aps)) if aps else 0.0
    return out
