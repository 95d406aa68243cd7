"""Loss functions as pure functions; shapes are stated per argument."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["bce_dice_loss", "binary_kd_loss", "dice_loss"]


def dice_loss(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """Soft Dice loss over the batch. logits, target: (B, 1, H, W); target in [0, 1]."""
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum()
    return 1 - (2 * inter + eps) / (prob.sum() + target.sum() + eps)


def bce_dice_loss(
    logits: Tensor, target: Tensor, dice_weight: float = 1.0, pos_weight: float = 1.0
) -> dict[str, Tensor]:
    """BCE (optionally up-weighting positives) + weighted Dice. logits, target: (B, 1, H, W)."""
    pw = logits.new_tensor(pos_weight)
    out = {"loss_bce": F.binary_cross_entropy_with_logits(logits, target, pos_weight=pw)}
    if dice_weight > 0:
        out["loss_dice"] = dice_weight * dice_loss(logits, target)
    return out


def binary_kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Pixel-wise binary KD: ``T^2 * KL(sigmoid(t/T) || sigmoid(s/T))`` averaged over pixels.

    Args:
        student_logits: (B, 1, H, W) logits.
        teacher_logits: (B, 1, H, W) logits (detached).
    """
    t = temperature
    s2 = torch.cat([torch.zeros_like(student_logits), student_logits / t], dim=1)  # (B, 2, H, W): [bg, fg]
    t2 = torch.cat([torch.zeros_like(teacher_logits), teacher_logits.detach() / t], dim=1)
    log_p_s = F.log_softmax(s2, dim=1)
    log_p_t = F.log_softmax(t2, dim=1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean() * t * t
