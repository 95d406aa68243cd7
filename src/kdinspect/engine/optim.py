"""Optimizers and the learning-rate schedule (per-iteration warm-up, epoch-based decay, plateau)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from kdinspect.config import TrainConfig

__all__ = ["LRSchedule", "build_optimizer", "capped_warmup", "param_groups"]

OPTIMIZERS = ("sgd", "adamw", "rmsprop")
SCHEDULERS = ("step", "cosine", "plateau", "none")


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters split into decayed weights and non-decayed norms/biases (1-D tensors)."""
    decay, no_decay = [], []
    for _, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(params: Iterable[Any] | nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Build the optimizer named by ``cfg.optimizer`` (Keras-compatible RMSprop alpha/eps by default)."""
    if isinstance(params, nn.Module):
        params = param_groups(params, cfg.weight_decay)
    name = cfg.optimizer.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(
            params,
            lr=cfg.lr,
            alpha=cfg.rmsprop_alpha,
            eps=cfg.rmsprop_eps,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
        )
    raise ValueError(f"optimizer {cfg.optimizer!r} not in {list(OPTIMIZERS)}")


def capped_warmup(warmup_iters: int, total_iters: int, max_frac: float) -> int:
    """The warm-up length actually used: ``warmup_iters``, but at most ``max_frac`` of the run (0 = no cap), so a
    short run is not spent mostly warming up."""
    if max_frac <= 0:
        return warmup_iters
    return min(warmup_iters, max(1, int(total_iters * max_frac)))


class LRSchedule:
    """Learning rate as a pure function of the iteration, plus a plateau factor updated at evaluations.

    ``lr = base_lr * warmup(step) * decay(step) * plateau``, where ``decay`` is a step schedule (milestones in epochs,
    factor ``gamma``), a cosine curve over all iterations, or 1. Computing the LR from the step (instead of chaining
    scheduler calls) makes resumed runs reproduce the schedule exactly.

    Args:
        optimizer: its groups' ``lr`` are set at every :meth:`step`.
        kind: ``step`` | ``cosine`` | ``plateau`` | ``none``.
        iters_per_epoch: iterations in one epoch (converts epoch milestones to iterations).
        total_iters: iterations of the whole run (cosine length).
        milestones: epochs at which a step schedule multiplies the LR by ``gamma``.
        gamma: decay factor for step and plateau schedules.
        warmup_iters: linear warm-up length; the factor rises from ``warmup_ratio`` to 1.
        warmup_ratio: initial warm-up factor.
        patience: plateau: evaluations without improvement before decaying.
        min_lr: lower bound for plateau decay.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        kind: str = "step",
        iters_per_epoch: int = 1,
        total_iters: int = 1,
        milestones: list[int] | None = None,
        gamma: float = 0.1,
        warmup_iters: int = 0,
        warmup_ratio: float = 0.001,
        patience: int = 5,
        min_lr: float = 1e-8,
    ) -> None:
        if kind not in SCHEDULERS:
            raise ValueError(f"scheduler {kind!r} not in {list(SCHEDULERS)}")
        self.optimizer = optimizer
        self.kind = kind
        self.base_lrs = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
        for g, lr in zip(optimizer.param_groups, self.base_lrs):
            g["initial_lr"] = lr
        self.iters_per_epoch = max(iters_per_epoch, 1)
        self.total_iters = max(total_iters, 1)
        self.milestones = sorted(milestones or [])
        self.gamma = gamma
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio
        self.patience = patience
        self.min_lr = min_lr
        self.plateau_factor = 1.0
        self.plateau_best: float | None = None
        self.plateau_bad = 0

    def factor(self, step: int) -> float:
        f = 1.0
        if step < self.warmup_iters:
            f *= self.warmup_ratio + (1 - self.warmup_ratio) * step / self.warmup_iters
        if self.kind == "step":
            f *= self.gamma ** sum(step >= m * self.iters_per_epoch for m in self.milestones)
        elif self.kind == "cosine":
            f *= 0.5 * (1 + math.cos(math.pi * min(step, self.total_iters) / self.total_iters))
        return f * self.plateau_factor

    def step(self, step: int) -> None:
        """Set the learning rate for iteration ``step`` (0-based)."""
        f = self.factor(step)
        for g, lr in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = max(lr * f, self.min_lr) if self.kind == "plateau" else lr * f

    def on_eval(self, value: float, higher_is_better: bool = True) -> None:
        """Plateau bookkeeping: decay by ``gamma`` after ``patience`` evaluations without improvement."""
        if self.kind != "plateau" or not math.isfinite(value):
            return
        better = self.plateau_best is None or (
            value > self.plateau_best if higher_is_better else value < self.plateau_best
        )
        if better:
            self.plateau_best, self.plateau_bad = value, 0
            return
        self.plateau_bad += 1
        if self.plateau_bad > self.patience:
            self.plateau_factor *= self.gamma
            self.plateau_bad = 0

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "plateau_factor": self.plateau_factor,
            "plateau_best": self.plateau_best,
            "plateau_bad": self.plateau_bad,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau_factor = float(state.get("plateau_factor", 1.0))
        self.plateau_best = state.get("plateau_best")
        self.plateau_bad = int(state.get("plateau_bad", 0))
