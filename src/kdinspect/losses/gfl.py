"""GFL-family detection losses as pure functions (Li et al., "Generalized Focal Loss", NeurIPS 2020,
arXiv:2006.04388; weights and normalisations as in the HSD paper, arXiv:2307.00701): sigmoid BCE, quality focal
loss, GIoU, distribution focal loss and the localisation-distillation KL. Box helpers for distance <-> box conversion.

Every per-sample loss returns one value per row (``reduction`` is left to the caller, who applies the HSD weights and
normalisations).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import generalized_box_iou_loss

__all__ = [
    "aligned_iou",
    "bbox2distance",
    "distance2bbox",
    "distribution_focal_loss",
    "giou_loss",
    "ld_kl_loss",
    "quality_focal_loss",
    "sigmoid_bce_loss",
]


def distance2bbox(points: Tensor, distance: Tensor) -> Tensor:
    """points: (N, 2) xy; distance: (N, 4) left, top, right, bottom -> (N, 4) xyxy."""
    return torch.cat([points - distance[:, :2], points + distance[:, 2:]], dim=1)


def bbox2distance(points: Tensor, boxes: Tensor, max_dis: float, eps: float = 0.1) -> Tensor:
    """points: (N, 2); boxes: (N, 4) xyxy -> (N, 4) left, top, right, bottom clamped to [0, max_dis - eps]."""
    d = torch.cat([points - boxes[:, :2], boxes[:, 2:] - points], dim=1)
    return d.clamp(min=0, max=max_dis - eps)


def aligned_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-6) -> Tensor:
    """IoU of row-aligned pairs. boxes1, boxes2: (N, 4) xyxy -> (N,)."""
    lt = torch.maximum(boxes1[:, :2], boxes2[:, :2])
    rb = torch.minimum(boxes1[:, 2:], boxes2[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area1 = (boxes1[:, 2:] - boxes1[:, :2]).clamp(min=0).prod(dim=1)
    area2 = (boxes2[:, 2:] - boxes2[:, :2]).clamp(min=0).prod(dim=1)
    return inter / (area1 + area2 - inter).clamp(min=eps)


def sigmoid_bce_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Sigmoid BCE against one-hot labels, summed over classes (the released HSD "FC loss").

    Args:
        logits: (N, C) class logits.
        labels: (N,) int64 in [0, C]; C means background (all-zero target).

    Returns:
        (N,) loss per sample.
    """
    num_classes = logits.shape[1]
    target = F.one_hot(labels, num_classes + 1)[:, :num_classes].to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(dim=1)


def quality_focal_loss(logits: Tensor, labels: Tensor, scores: Tensor, beta: float = 2.0) -> Tensor:
    """Quality focal loss (GFL): the positive class is trained towards the IoU ``score``, every other entry towards 0,
    each BCE term scaled by ``|target - sigmoid(logit)|^beta``.

    Args:
        logits: (N, C) class logits.
        labels: (N,) int64 in [0, C]; C means background.
        scores: (N,) IoU quality targets (read at positives only).
        beta: modulating exponent.

    Returns:
        (N,) loss per sample (summed over classes).
    """
    prob = logits.sigmoid()
    loss = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none") * prob.pow(beta)
    pos = torch.nonzero(labels < logits.shape[1]).squeeze(1)
    if pos.numel():
        cls = labels[pos]
        score = scores[pos].to(logits.dtype)
        lp = logits[pos, cls]
        pos_loss = F.binary_cross_entropy_with_logits(lp, score, reduction="none") * (score - lp.sigmoid()).abs().pow(
            beta
        )
        loss = loss.index_put((pos, cls), pos_loss)
    return loss.sum(dim=1)


def giou_loss(pred: Tensor, target: Tensor) -> Tensor:
    """1 - GIoU for aligned rows (torchvision). pred, target: (N, 4) xyxy -> (N,)."""
    return generalized_box_iou_loss(pred, target, reduction="none")


def distribution_focal_loss(pred: Tensor, label: Tensor) -> Tensor:
    """Distribution focal loss: cross-entropy towards the two bins around a continuous target, weighted by proximity.

    ``DFL = (y+ - y) * CE(pred, y-) + (y - y-) * CE(pred, y+)`` with ``y- = floor(y)``, ``y+ = y- + 1``.

    Args:
        pred: (N, n + 1) bin logits.
        label: (N,) continuous targets in [0, n).

    Returns:
        (N,) loss per row.
    """
    left = label.long()
    right = left + 1
    w_left = right.to(label.dtype) - label
    w_right = label - left.to(label.dtype)
    return (
        F.cross_entropy(pred, left, reduction="none") * w_left
        + F.cross_entropy(pred, right, reduction="none") * w_right
    )


def ld_kl_loss(pred: Tensor, soft_label: Tensor, temperature: float) -> Tensor:
    """Localisation-distillation KL (LD, as released in HSD/LD): ``T^2 * mean_k p^T_k (log p^T_k - log p^S_k)`` with
    both distributions softened by ``T``; the mean over the bins (not the sum) follows the released code.

    Args:
        pred: (N, n + 1) student bin logits.
        soft_label: (N, n + 1) teacher bin logits (detached here).
        temperature: softening temperature T.

    Returns:
        (N,) loss per row; 0 where student and teacher logits are equal.
    """
    t = temperature
    target = F.softmax(soft_label.detach() / t, dim=1)
    kl = F.kl_div(F.log_softmax(pred / t, dim=1), target, reduction="none").mean(dim=1)
    return kl * (t * t)
