"""Losses on two-channel crack maps (channel 0 = crack, 1 = background, the MCFF-L convention).

All functions take *logits* ``(B, 2, H, W)`` plus a temperature, and a target given as probabilities ``(B, 2, H, W)``
(one-hot ground truth or a teacher's soft map), so the same call serves ground-truth and distillation terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "MAP_LOSSES",
    "asymmetric_binary_loss",
    "bce_dice_loss",
    "compute_map_loss",
    "soft_dice_loss",
    "two_channel",
    "two_channel_kl",
]

MAP_LOSSES = ("asymmetric", "kl", "bce_dice")


def two_channel(crack: Tensor) -> Tensor:
    """(B, 1, H, W) crack probability -> (B, 2, H, W) pair ``[p, 1 - p]``."""
    return torch.cat([crack, 1.0 - crack], dim=1)


def asymmetric_binary_loss(prob: Tensor, target: Tensor, alpha: float = 200.0) -> Tensor:
    """The released ``Asymmetry_Binary_Loss``.

    ``mean((alpha*t0 - alpha*p0)^2) + mean((t1 - p1)^2) + mean((p0 + p1 - 1)^2)``, means over batch and pixels
    (Keras' per-sample MSE over the last axis, then the batch mean). With ``alpha = 200`` the crack channel weighs
    40,000 times the background channel.

    Args:
        prob: (B, 2, H, W) predicted probabilities (softmax output).
        target: (B, 2, H, W) target probabilities.
        alpha: scale of the crack channel before the squared error.
    """
    p0, p1 = prob[:, 0], prob[:, 1]
    t0, t1 = target[:, 0], target[:, 1]
    crack = torch.mean((alpha * t0 - alpha * p0) ** 2)
    background = torch.mean((t1 - p1) ** 2)
    sum_to_one = torch.mean((p0 + p1 - 1.0) ** 2)
    return crack + background + sum_to_one


def two_channel_kl(logits: Tensor, target: Tensor, temperature: float = 1.0) -> Tensor:
    """``T^2 * KL(target || softmax(logits / T))`` per pixel over the two channels, averaged over pixels.

    Args:
        logits: (B, 2, H, W).
        target: (B, 2, H, W) probabilities (0 entries contribute 0).
    """
    log_p = F.log_softmax(logits / temperature, dim=1)
    t = target.clamp_min(0.0)
    kl = torch.where(t > 0, t * (torch.log(t.clamp_min(1e-12)) - log_p), torch.zeros_like(t)).sum(dim=1)
    return kl.mean() * temperature**2


def soft_dice_loss(prob: Tensor, target: Tensor, smooth: float = 1.0) -> Tensor:
    """``1 - (2 sum(p t) + s) / (sum(p) + sum(t) + s)`` over the whole batch; prob and target of equal shape."""
    inter = (prob * target).sum()
    return 1.0 - (2.0 * inter + smooth) / (prob.sum() + target.sum() + smooth)


def bce_dice_loss(logits: Tensor, target: Tensor, temperature: float = 1.0) -> Tensor:
    """Binary cross-entropy + soft Dice on the crack channel of a two-channel map.

    The crack probability of ``softmax(logits / T)`` is ``sigmoid((z0 - z1) / T)``, so BCE runs on that logit.

    Args:
        logits: (B, 2, H, W).
        target: (B, 2, H, W) probabilities; only channel 0 is used (soft targets allowed).
    """
    z = (logits[:, :1] - logits[:, 1:2]) / temperature  # (B, 1, H, W) crack logit
    t = target[:, :1]
    return F.binary_cross_entropy_with_logits(z, t) + soft_dice_loss(torch.sigmoid(z), t)


def compute_map_loss(
    kind: str, logits: Tensor, target: Tensor, temperature: float = 1.0, alpha: float = 200.0
) -> Tensor:
    """One output's loss against a two-channel target.

    Args:
        kind: ``asymmetric`` (released MSE loss on ``softmax(logits / T)``), ``kl`` (``T^2``-scaled KL) or
            ``bce_dice``.
        logits: (B, 2, H, W) gated logits.
        target: (B, 2, H, W) target probabilities.
        temperature: T applied to the logits (1 = plain softmax).
        alpha: crack-channel scale of the asymmetric loss.
    """
    if kind == "asymmetric":
        return asymmetric_binary_loss(torch.softmax(logits / temperature, dim=1), target, alpha)
    if kind == "kl":
        return two_channel_kl(logits, target, temperature)
    if kind == "bce_dice":
        return bce_dice_loss(logits, target, temperature)
    raise ValueError(f"loss {kind!r} not in {list(MAP_LOSSES)}")
