"""Exponential moving average (EMA) of the model weights, on ``torch.optim.swa_utils.AveragedModel``.

The decay ramps up with the number of updates, as in Ultralytics and timm's ``ModelEmaV2`` with warm-up::

    d_k = decay * (1 - exp(-k / tau))        # k = 1, 2, ... (the k-th update)
    ema = d_k * ema + (1 - d_k) * weights

so the average follows the fast-moving weights of early training and settles to ``decay`` after a few ``tau`` updates.
The first update copies the weights (``AveragedModel`` does this; ``d_1 ~ decay / tau`` is nearly 0 anyway). Buffers
are averaged too (``use_buffers=True``: BatchNorm running statistics), except integer ones (``num_batches_tracked``),
which are copied.

The trainer updates the EMA after every optimizer step, evaluates with the EMA weights and stores them in
``best.safetensors``; ``last.safetensors`` holds the raw weights (``model.*``), the EMA weights (``ema.*``) and the
update count, so ``--resume`` continues exactly.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

__all__ = ["ModelEMA", "ema_decay_at", "ramped_ema_fn"]


def ema_decay_at(updates: int, decay: float, tau: float) -> float:
    """The decay of the ``updates``-th update: ``decay * (1 - exp(-updates / tau))`` (``tau <= 0``: no ramp)."""
    if tau <= 0:
        return decay
    return decay * (1.0 - math.exp(-updates / tau))


def ramped_ema_fn(decay: float, tau: float):
    """A ``multi_avg_fn`` for :class:`AveragedModel` with the ramped decay of :func:`ema_decay_at`.

    ``AveragedModel`` calls it with the number of updates already averaged (``n``, >= 1): this one is update ``n + 1``.
    """

    @torch.no_grad()
    def update(averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor) -> None:
        d = ema_decay_at(int(num_averaged) + 1, decay, tau)
        floats = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1.0 - d)
        for a, c in zip(averaged, current, strict=True):
            if not a.is_floating_point():
                a.copy_(c)

    return update


class ModelEMA(nn.Module):
    """EMA of ``model``'s parameters and buffers (a deep copy kept in eval mode, never trained).

    Args:
        model: the model to average (for distillation: the student; for DDP: the unwrapped module).
        decay: final decay (``train.ema_decay``).
        tau: ramp length in updates (``train.ema_tau``; 0 = constant decay).
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000) -> None:
        super().__init__()
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"train.ema_decay must be in [0, 1], got {decay}")
        if tau < 0:
            raise ValueError(f"train.ema_tau must be >= 0, got {tau}")
        self.decay = float(decay)
        self.tau = float(tau)
        self.averaged = AveragedModel(model, multi_avg_fn=ramped_ema_fn(self.decay, self.tau), use_buffers=True)
        self.averaged.eval().requires_grad_(False)

    @property
    def module(self) -> nn.Module:
        """The averaged model (same class and state-dict keys as the source model)."""
        return self.averaged.module

    @property
    def updates(self) -> int:
        return int(self.averaged.n_averaged)

    def train(self, mode: bool = True) -> ModelEMA:  # the average is never put in training mode
        return super().train(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Average the current weights of ``model`` in (call after each optimizer step)."""
        self.averaged.update_parameters(model)

    def state_tensors(self) -> dict[str, Tensor]:
        """The averaged model's ``state_dict`` (for a checkpoint's ``ema.*`` group)."""
        return self.module.state_dict()

    def load(self, tensors: dict[str, Tensor], updates: int) -> None:
        """Restore from :meth:`state_tensors` and the update count (strict)."""
        self.module.load_state_dict(tensors)
        self.averaged.n_averaged.fill_(int(updates))

    @contextlib.contextmanager
    def swapped_into(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily copy the EMA weights into ``model`` (e.g. to evaluate a task built around it); the raw weights
        are copied back bit-exactly on exit, also after an error."""
        raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
        with torch.no_grad():
            model.load_state_dict(self.module.state_dict())
        try:
            yield model
        finally:
            with torch.no_grad():
                model.load_state_dict(raw)
