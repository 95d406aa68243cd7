"""Generic distillation losses (pure functions). Shapes are stated per argument."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["channel_wise_divergence", "feature_mse", "kd_kl"]


def kd_kl(
    student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0, reduction: str = "batchmean"
) -> Tensor:
    """Hinton KD: ``T^2 * KL(softmax(t/T) || softmax(s/T))`` over the last dimension.

    Args:
        student_logits: (N, C) logits.
        teacher_logits: (N, C) logits (no gradient flows into them).
        temperature: softening temperature T.
        reduction: ``batchmean`` (sum / N), ``mean`` (mean over all elements), ``sum`` or ``none`` ((N,) per row).
    """
    t = temperature
    log_p_s = F.log_softmax(student_logits / t, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.detach() / t, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1) * (t * t)
    if reduction == "none":
        return kl
    if reduction == "sum":
        return kl.sum()
    if reduction == "mean":
        return kl.sum() / max(student_logits.numel(), 1)
    if reduction == "batchmean":
        return kl.sum() / max(kl.numel(), 1)
    raise ValueError(f"reduction {reduction!r} not in ['batchmean', 'mean', 'sum', 'none']")


def channel_wise_divergence(student: Tensor, teacher: Tensor, tau: float = 1.0) -> Tensor:
    """Channel-wise distillation (Shu et al. 2021): per channel, KL between spatial softmax distributions.

    ``tau^2 / (N*C) * sum_{n,c} KL(softmax_j(t_{n,c,j}/tau) || softmax_j(s_{n,c,j}/tau))``

    Args:
        student: (N, C, H, W) feature map.
        teacher: (N, C, H, W) feature map (same shape).
    """
    if student.shape != teacher.shape:
        raise ValueError(
            f"CWD needs equal shapes, got student {tuple(student.shape)} and teacher {tuple(teacher.shape)}"
        )
    n, c = student.shape[:2]
    s = student.reshape(n * c, -1) / tau  # (N*C, H*W)
    t = teacher.detach().reshape(n * c, -1) / tau
    log_p_t = F.log_softmax(t, dim=1)
    kl = (log_p_t.exp() * (log_p_t - F.log_softmax(s, dim=1))).sum()
    return kl * (tau**2) / (n * c)


def feature_mse(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean squared error between feature maps of equal shape; the teacher is detached."""
    if student.shape != teacher.shape:
        raise ValueError(f"feature_mse needs equal shapes, got {tuple(student.shape)} and {tuple(teacher.shape)}")
    return torch.mean((student - teacher.detach()) ** 2)
