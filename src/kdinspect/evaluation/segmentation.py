"""Crack segmentation metrics: strict and tolerance precision / recall / F1 / IoU, and ODS / OIS F1.

Definitions (all pixel counts are summed over the whole evaluation set unless stated):

- **strict** (the released ``A_*`` metrics): ``pred = prob >= 0.5``; TP = |pred & gt|; P = TP/|pred|, R = TP/|gt|,
  IoU = TP / (|pred| + |gt| - TP).
- **tolerance** (the released ``M_*`` metrics, +-``tol`` px): ``D = dilate(gt)`` with a (2*tol+1)^2 square (a 5x5
  max-pool for tol = 2). Precision counts a predicted pixel as correct when it lies in D: P = |pred & D|/|pred|.
  Recall uses the undilated GT: R = |pred & gt|/|gt|. IoU: I = |pred & D|, U = I + (|gt| - |gt & pred|) +
  (|pred| - |D & pred|). The released code thresholds at 0.4 for ``M_*``; ``tol_threshold`` exposes it (default 0.5,
  the same threshold as the strict metrics, so the two differ only by the tolerance).
- **ODS** (optimal dataset scale): the best dataset-level F1 over thresholds 0.01..0.99; **OIS** (optimal image
  scale): the mean over images of each image's best F1. Reported for both strict and tolerance matching.

Ground truth is the raw (undilated) mask; the training-time GT dilation of the released code is not applied here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["SegmentationMeter", "evaluate_segmentation"]

_NBINS = 100  # thresholds k/100, k = 1..99


def _f1(p: np.ndarray | float, r: np.ndarray | float) -> np.ndarray:
    p, r = np.asarray(p, dtype=np.float64), np.asarray(r, dtype=np.float64)
    return np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)


def _ratio(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.where(b > 0, a / np.maximum(b, 1e-12), 0.0)


def _ge_counts(values: Tensor) -> np.ndarray:
    """counts[k] = number of values >= k/100 for k = 0..99 (values in [0, 1])."""
    bins = (values.double() * _NBINS + 1e-4).floor().clamp(0, _NBINS - 1).long()
    hist = torch.bincount(bins, minlength=_NBINS).double().numpy()
    return hist[::-1].cumsum()[::-1]


class SegmentationMeter:
    """Accumulates counts image by image (so a whole test set never sits in memory at once).

    Args:
        threshold: threshold of the strict metrics.
        tol: tolerance radius in pixels.
        tol_threshold: threshold of the tolerance metrics.
    """

    def __init__(self, threshold: float = 0.5, tol: int = 2, tol_threshold: float = 0.5) -> None:
        self.threshold = threshold
        self.tol = tol
        self.tol_threshold = tol_threshold
        self.sums: dict[str, float] = dict.fromkeys(("tp", "pred", "gt", "tp_tol", "pred_tol", "tp_r_tol"), 0.0)
        self.sweep = {k: np.zeros(_NBINS) for k in ("tp", "pred", "tp_tol")}
        self.gt_total = 0.0
        self.image_best: list[tuple[float, float]] = []  # (best strict F1, best tolerance F1) per image

    def update(self, prob: Tensor, gt: Tensor | np.ndarray) -> None:
        """Add one image. prob: (H, W) probabilities; gt: (H, W) bool/0-1 mask of the same size."""
        gt_t = torch.as_tensor(np.asarray(gt)).bool() if not isinstance(gt, Tensor) else gt.bool()
        prob = prob.detach().float().cpu()
        if prob.shape != gt_t.shape:
            raise ValueError(f"prediction {tuple(prob.shape)} and mask {tuple(gt_t.shape)} differ in size")
        if not bool(torch.isfinite(prob).all()):
            n = int((~torch.isfinite(prob)).sum())
            raise ValueError(f"prediction has {n} NaN/Inf value(s) of {prob.numel()}: the model output is not finite")
        k = 2 * self.tol + 1
        dil = F.max_pool2d(gt_t[None, None].float(), k, stride=1, padding=self.tol)[0, 0].bool()
        pred = prob >= self.threshold
        pred_t = prob >= self.tol_threshold
        n_gt = float(gt_t.sum())
        s = self.sums
        s["tp"] += float((pred & gt_t).sum())
        s["pred"] += float(pred.sum())
        s["gt"] += n_gt
        s["tp_tol"] += float((pred_t & dil).sum())
        s["pred_tol"] += float(pred_t.sum())
        s["tp_r_tol"] += float((pred_t & gt_t).sum())
        tp = _ge_counts(prob[gt_t])
        npred = _ge_counts(prob.flatten())
        tp_tol = _ge_counts(prob[dil])
        self.sweep["tp"] += tp
        self.sweep["pred"] += npred
        self.sweep["tp_tol"] += tp_tol
        self.gt_total += n_gt
        f1_img = _f1(_ratio(tp, npred), _ratio(tp, n_gt)) if n_gt > 0 else (npred == 0).astype(float)
        f1_img_tol = _f1(_ratio(tp_tol, npred), _ratio(tp, n_gt)) if n_gt > 0 else (npred == 0).astype(float)
        self.image_best.append((float(f1_img[1:].max()), float(f1_img_tol[1:].max())))

    def at_threshold(self, thr: float) -> dict[str, float]:
        """Dataset precision, recall, F1 and IoU at ``thr`` (a multiple of 0.01 in [0.01, 0.99], e.g. a model's
        stored ODS threshold), read off the threshold sweep: ``precision_thr`` ... ``iou_thr`` and ``mask_thr``."""
        k = round(thr * _NBINS)
        if not 1 <= k < _NBINS:
            raise ValueError(f"threshold {thr} outside the sweep 0.01..0.99")
        tp, npred = self.sweep["tp"][k], self.sweep["pred"][k]
        p, r = _ratio(tp, npred), _ratio(tp, self.gt_total)
        return {
            "mask_thr": k / _NBINS,
            "precision_thr": float(p),
            "recall_thr": float(r),
            "f1_thr": float(_f1(p, r)),
            "iou_thr": float(_ratio(tp, npred + self.gt_total - tp)),
        }

    def compute(self) -> dict[str, float]:
        s = self.sums
        p, r = _ratio(s["tp"], s["pred"]), _ratio(s["tp"], s["gt"])
        p_t, r_t = _ratio(s["tp_tol"], s["pred_tol"]), _ratio(s["tp_r_tol"], s["gt"])
        union_t = s["tp_tol"] + (s["gt"] - s["tp_r_tol"]) + (s["pred_tol"] - s["tp_tol"])
        sw = self.sweep
        ods_curve = _f1(_ratio(sw["tp"], sw["pred"]), _ratio(sw["tp"], self.gt_total))[1:]
        ods_tol_curve = _f1(_ratio(sw["tp_tol"], sw["pred"]), _ratio(sw["tp"], self.gt_total))[1:]
        best = np.asarray(self.image_best) if self.image_best else np.zeros((1, 2))
        metrics = {
            "precision": float(p),
            "recall": float(r),
            "f1": float(_f1(p, r)),
            "iou": float(_ratio(s["tp"], s["pred"] + s["gt"] - s["tp"])),
            "precision_tol": float(p_t),
            "recall_tol": float(r_t),
            "f1_tol": float(_f1(p_t, r_t)),
            "iou_tol": float(_ratio(s["tp_tol"], union_t)),
            "ods": float(ods_curve.max()),
            "ods_threshold": float((ods_curve.argmax() + 1) / _NBINS),
            "ois": float(best[:, 0].mean()),
            "ods_tol": float(ods_tol_curve.max()),
            "ois_tol": float(best[:, 1].mean()),
            "images": float(len(self.image_best)),
        }
        metrics["main"] = metrics["f1"]
        return metrics


def evaluate_segmentation(
    probs: Sequence[Tensor],
    masks: Sequence[Tensor | np.ndarray],
    out_dir: str | Path | None = None,
    threshold: float = 0.5,
    tol: int = 2,
    tol_threshold: float = 0.5,
) -> dict[str, float]:
    """Evaluate (H, W) probability maps against masks of the same size; see the module docstring for definitions."""
    if len(probs) != len(masks):
        raise ValueError(f"{len(probs)} predictions for {len(masks)} masks")
    meter = SegmentationMeter(threshold, tol, tol_threshold)
    for prob, mask in zip(probs, masks):
        meter.update(prob, mask)
    metrics = meter.compute()
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
