"""COCO-style detection metrics (faster-coco-eval), per-class AP, PR curves and a confusion matrix."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import box_iou

from kdinspect.data.structures import Detections
from kdinspect.evaluation.confidence import ConfidenceCurves, confidence_curves

__all__ = ["GroundTruth", "confusion_matrix", "evaluate_detections"]

logger = logging.getLogger(__name__)


@dataclass
class GroundTruth:
    """Ground truth of one image in original pixels. boxes: (N, 4) xyxy; labels: (N,) class indices."""

    image_id: str
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray


def _to_coco(preds: Sequence[Detections], gts: Sequence[GroundTruth], classes: Sequence[str]) -> tuple[dict, list]:
    images, anns, dets = [], [], []
    for img_idx, (gt, pred) in enumerate(zip(gts, preds)):
        images.append({"id": img_idx, "width": int(gt.width), "height": int(gt.height), "file_name": gt.image_id})
        for box, label in zip(np.asarray(gt.boxes, dtype=np.float64).reshape(-1, 4), np.asarray(gt.labels).ravel()):
            w, h = box[2] - box[0], box[3] - box[1]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img_idx,
                    "category_id": int(label) + 1,
                    "bbox": [float(box[0]), float(box[1]), float(w), float(h)],
                    "area": float(w * h),
                    "iscrowd": 0,
                }
            )
        boxes = pred.boxes.detach().cpu().double().numpy().reshape(-1, 4)
        for box, score, label in zip(boxes, pred.scores.detach().cpu().tolist(), pred.labels.detach().cpu().tolist()):
            dets.append(
                {
                    "image_id": img_idx,
                    "category_id": int(label) + 1,
                    "score": float(score),
                    "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                }
            )
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(classes)]
    return {"images": images, "annotations": anns, "categories": cats}, dets


def confusion_matrix(
    preds: Sequence[Detections],
    gts: Sequence[GroundTruth],
    num_classes: int,
    iou_thr: float = 0.5,
    score_thr: float = 0.25,
) -> np.ndarray:
    """(C+1, C+1) matrix; rows = ground truth class (last = background / false positive), columns = prediction
    (last = missed). Predictions above ``score_thr`` are matched greedily by score to the highest-IoU unmatched GT."""
    bg = num_classes
    mat = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    for pred, gt in zip(preds, gts):
        keep = pred.scores >= score_thr
        p_boxes, p_labels = pred.boxes[keep].float().cpu(), pred.labels[keep].cpu()
        order = pred.scores[keep].cpu().argsort(descending=True)
        g_boxes = torch.as_tensor(np.asarray(gt.boxes, dtype=np.float32).reshape(-1, 4))
        g_labels = torch.as_tensor(np.asarray(gt.labels, dtype=np.int64).ravel())
        matched = torch.zeros(len(g_boxes), dtype=torch.bool)
        ious = box_iou(p_boxes, g_boxes) if len(p_boxes) and len(g_boxes) else torch.zeros(len(p_boxes), len(g_boxes))
        for i in order.tolist():
            cand = ious[i].clone()
            cand[matched] = -1
            j = int(cand.argmax()) if len(cand) else -1
            if j >= 0 and cand[j] >= iou_thr:
                matched[j] = True
                mat[int(g_labels[j]), int(p_labels[i])] += 1
            else:
                mat[bg, int(p_labels[i])] += 1
        for j in torch.nonzero(~matched).flatten().tolist():
            mat[int(g_labels[j]), bg] += 1
    return mat


def evaluate_detections(
    preds: Sequence[Detections],
    gts: Sequence[GroundTruth],
    classes: Sequence[str],
    out_dir: str | Path | None = None,
    score_thr_confusion: float = 0.25,
) -> dict[str, float]:
    """COCO bbox evaluation.

    Args:
        preds: one :class:`Detections` per image, original pixels.
        gts: ground truth, aligned with ``preds``.
        classes: class names (label i -> ``classes[i]``).
        out_dir: if given, write ``metrics.json``, ``pr_curves.png`` (IoU 0.5) and ``confusion_matrix.png``.
        score_thr_confusion: score threshold of the confusion matrix.

    Returns:
        ``mAP`` (0.5:0.95), ``mAP50``, ``mAP75``, ``mAP_small/medium/large``, ``AP_<class>``, ``AP50_<class>`` and
        ``main`` (= mAP50). Classes without ground truth are left out of the per-class keys. Single-class data also
        gets the HSD image-level fault accuracy (``fault_acc@t``, ``fault_false@t``, ``fault_missed@t``, ...).
    """
    from faster_coco_eval import COCO, COCOeval_faster

    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth images")
    gt_dict, dets = _to_coco(preds, gts, classes)
    fault = _fault_metrics(preds, gts, classes)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(gt_dict)
        coco_dt = coco_gt.loadRes(dets) if dets else None
    if coco_dt is None or not gt_dict["annotations"]:
        curves = confidence_curves(preds, [g.boxes for g in gts], [g.labels for g in gts], len(classes))
        metrics = {"mAP": 0.0, "mAP50": 0.0, "mAP75": 0.0, "main": 0.0}
        for k, name in enumerate(classes):  # no detection at all: every class with ground truth scores 0
            if curves.n_gt[k] > 0:
                metrics |= {f"AP_{name}": 0.0, f"AP50_{name}": 0.0}
        metrics |= _precision_recall(curves, classes, len(gts)) | fault
        _write_outputs(out_dir, metrics, None, preds, gts, classes, score_thr_confusion, curves)
        return metrics
    ev = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=logger.debug)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = ev.stats
    metrics = {
        "mAP": float(s[0]),
        "mAP50": float(s[1]),
        "mAP75": float(s[2]),
        "mAP_small": float(s[3]),
        "mAP_medium": float(s[4]),
        "mAP_large": float(s[5]),
    }
    precision = np.asarray(ev.eval["precision"])  # (T iou thr, R recall pts, K classes, A areas, M max dets)
    for k, name in enumerate(classes):
        p_all = precision[:, :, k, 0, -1]
        if (p_all > -1).any():
            metrics[f"AP_{name}"] = float(p_all[p_all > -1].mean())
            p50 = precision[0, :, k, 0, -1]
            metrics[f"AP50_{name}"] = float(p50[p50 > -1].mean()) if (p50 > -1).any() else 0.0
    metrics = {k: (max(v, 0.0) if v == v else 0.0) for k, v in metrics.items()}
    metrics["main"] = metrics["mAP50"]
    curves = confidence_curves(preds, [g.boxes for g in gts], [g.labels for g in gts], len(classes))
    metrics |= _precision_recall(curves, classes, len(gts)) | fault
    _write_outputs(out_dir, metrics, precision, preds, gts, classes, score_thr_confusion, curves)
    return metrics


def _precision_recall(curves: ConfidenceCurves, classes: Sequence[str], images: int) -> dict[str, float]:
    """P, R and F1 at the confidence that maximises the mean F1 (overall and per class), instances per class."""
    i, has = curves.best_index, curves.n_gt > 0
    out = {
        "precision": float(curves.precision[has, i].mean()) if has.any() else 0.0,
        "recall": float(curves.recall[has, i].mean()) if has.any() else 0.0,
        "f1": float(curves.f1[has, i].mean()) if has.any() else 0.0,
        "conf_best_f1": float(curves.conf[i]),
        "images": float(images),
        "instances": float(curves.n_gt.sum()),
    }
    for k, name in enumerate(classes):
        if curves.n_gt[k] > 0:
            out |= {f"P_{name}": float(curves.precision[k, i]), f"R_{name}": float(curves.recall[k, i])}
            out[f"instances_{name}"] = float(curves.n_gt[k])
    return out


def _fault_metrics(preds: Sequence[Detections], gts: Sequence[GroundTruth], classes: Sequence[str]) -> dict[str, float]:
    """The HSD paper's image-level fault accuracy (top-1 box per image), reported for single-class data only."""
    if len(classes) != 1:
        return {}
    from kdinspect.evaluation.fault_accuracy import fault_accuracy

    return fault_accuracy(preds, [np.asarray(g.boxes, dtype=np.float64).reshape(-1, 4) for g in gts])


def _write_outputs(
    out_dir: str | Path | None,
    metrics: dict[str, float],
    precision: np.ndarray | None,
    preds: Sequence[Detections],
    gts: Sequence[GroundTruth],
    classes: Sequence[str],
    score_thr: float,
    curves: ConfidenceCurves | None = None,
) -> None:
    if out_dir is None:
        return
    from kdinspect.evaluation.plots import plot_confidence_curves, plot_confusion_matrix, plot_pr_curves

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if precision is not None:
        recall = np.linspace(0, 1, precision.shape[1])
        pr = {n: precision[0, :, k, 0, -1] for k, n in enumerate(classes) if (precision[0, :, k, 0, -1] > -1).any()}
        aps = {n: metrics.get(f"AP50_{n}", float("nan")) for n in classes}
        plot_pr_curves(recall, pr, aps, out / "pr_curves.png", title="PR curves (IoU 0.5)")
    mat = confusion_matrix(preds, gts, len(classes), score_thr=score_thr)
    plot_confusion_matrix(
        mat, [*classes, "background"], out / "confusion_matrix.png", title=f"confusion (IoU 0.5, score >= {score_thr})"
    )
    np.savetxt(out / "confusion_matrix.csv", mat, fmt="%d", delimiter=",", header=",".join([*classes, "background"]))
    if curves is not None:
        names = [n for k, n in enumerate(classes) if curves.n_gt[k] > 0]
        for attr, label, file in (("precision", "precision", "P"), ("recall", "recall", "R"), ("f1", "F1", "F1")):
            data = getattr(curves, attr)
            per = {n: data[k] for k, n in enumerate(classes) if curves.n_gt[k] > 0}
            plot_confidence_curves(curves.conf, per, names, out / f"{file}_curve.png", label)
