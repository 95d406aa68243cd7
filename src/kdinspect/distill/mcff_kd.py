"""MCFF-L knowledge distillation: offline (stored soft labels) and online (frozen teacher in the loop).

Step 3 of the released workflow trains the student with five outputs: h, x, y and mix at temperature T1 are each
matched to the teacher's soft map of the same output (h<->h, x<->x, y<->y, mix<->mix), and ``mix_for_real``
(the mix logits at T2) is matched to the ground truth, optionally softened by T0. All five terms use the same loss
(the released asymmetric MSE) with weight 1 and are summed.

Temperature strategies (T0 = ground-truth softening, T1 = soft labels, T2 = the student's hard/deployed output):

============== ==== ==== ====
strategy        T0   T1   T2
============== ==== ==== ====
standard         0   10    1
hyperthermal    10   10   10
non_isothermal   0   10   10
============== ==== ==== ====

T2 is a property of the student network (``model.params.infer_temperature``), because the deployed output uses it;
the distiller checks that it matches the strategy.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from kdinspect.data.structures import Batch, SegTarget
from kdinspect.distill.distiller import Distiller
from kdinspect.losses.segmentation import MAP_LOSSES, compute_map_loss, two_channel
from kdinspect.models.mcff.net import OUTPUTS, MCFFLogits, MCFFNet
from kdinspect.models.mcff.targets import soften
from kdinspect.tasks.base import Task

__all__ = ["KD_MODES", "STRATEGIES", "MCFFDistiller", "build_mcff_kd", "stack_soft", "teacher_soft_maps"]

logger = logging.getLogger(__name__)

STRATEGIES: dict[str, tuple[float, float, float]] = {
    "standard": (0.0, 10.0, 1.0),
    "hyperthermal": (10.0, 10.0, 10.0),
    "non_isothermal": (0.0, 10.0, 10.0),
}
KD_MODES = ("offline", "online")


@torch.no_grad()
def teacher_soft_maps(teacher: MCFFNet, images: Tensor, t1: float, quantize: bool = False) -> Tensor:
    """Crack probability of ``softmax(gated_logits / T1)`` for each teacher output.

    Args:
        teacher: a trained MCFF-L net (eval mode is set by the caller).
        images: (B, 3, H, W) RGB in [0, 1].
        t1: soft-label temperature.
        quantize: round to 8-bit levels, as offline PNG soft labels are.

    Returns:
        (B, 4, H, W) in the order h, x, y, mix.
    """
    logits = teacher.forward_logits(images)
    maps = torch.cat([torch.softmax(v / t1, dim=1)[:, :1] for v in logits], dim=1)
    return torch.round(maps * 255.0) / 255.0 if quantize else maps


def stack_soft(targets: list[SegTarget | None], size: tuple[int, int], device: torch.device) -> Tensor:
    """Stack ``SegTarget.soft`` maps (4, h, w) into (B, 4, H, W), zero-padded bottom/right to ``size``.

    Raises:
        ValueError: an image has no soft labels (offline KD needs a soft-label file per training image).
    """
    out = torch.zeros(len(targets), len(OUTPUTS), *size, device=device)
    for i, t in enumerate(targets):
        if t is None or t.soft is None:
            raise ValueError(
                f"offline MCFF distillation: batch item {i} has no soft labels; set the data option "
                "that points the reader at the soft-label folder (see docs/mcff.md)"
            )
        if t.soft.shape[0] != len(OUTPUTS):
            raise ValueError(
                f"batch item {i}: soft labels have {t.soft.shape[0]} maps, expected {len(OUTPUTS)} "
                f"({', '.join(OUTPUTS)})"
            )
        h, w = t.soft.shape[-2:]
        out[i, :, :h, :w] = t.soft.to(device=device, dtype=out.dtype)
    return out


class MCFFDistiller(Distiller):
    """The five-output MCFF-L student objective.

    Args:
        student: segmentation task whose ``model`` is an :class:`MCFFNet`.
        teacher: frozen MCFF-L teacher (online mode), or None (offline mode: soft labels come with the batch).
        mode: ``offline`` (``SegTarget.soft`` from stored files) or ``online`` (teacher run on every batch).
        t0: ground-truth softening temperature (0 = one-hot).
        t1: soft-label temperature (the student's h/x/y/mix outputs are divided by it too).
        loss: ``asymmetric`` (released), ``kl`` or ``bce_dice``; used for all five terms.
        alpha: crack-channel scale of the asymmetric loss.
        quantize: online mode only: round teacher maps to 8 bits like the stored PNG soft labels.
        weight: multiplier on the four soft-label terms (1 in the released code).
    """

    def __init__(
        self,
        student: Task,
        teacher: nn.Module | None,
        mode: str = "offline",
        t0: float = 0.0,
        t1: float = 10.0,
        loss: str = "asymmetric",
        alpha: float = 200.0,
        quantize: bool = False,
        weight: float = 1.0,
    ) -> None:
        if mode not in KD_MODES:
            raise ValueError(f"mode {mode!r} not in {list(KD_MODES)}")
        if loss not in MAP_LOSSES:
            raise ValueError(f"loss {loss!r} not in {list(MAP_LOSSES)}")
        if not isinstance(student.model, MCFFNet):
            raise TypeError(f"MCFF distillation needs an MCFFNet student, got {type(student.model).__name__}")
        if mode == "online" and not isinstance(teacher, MCFFNet):
            raise TypeError(f"online MCFF distillation needs an MCFFNet teacher, got {type(teacher).__name__}")
        if t1 <= 0:
            raise ValueError(f"t1 must be > 0, got {t1}")
        super().__init__(student, teacher if mode == "online" else None, weight)
        self.mode, self.t0, self.t1 = mode, t0, t1
        self.loss_kind, self.alpha, self.quantize = loss, alpha, quantize

    @property
    def t2(self) -> float:
        return float(self.student.model.infer_temperature)

    def soft_targets(self, batch: Batch, size: tuple[int, int]) -> Tensor:
        """(B, 4, H, W) teacher crack probabilities at T1, from the batch (offline) or the teacher (online)."""
        if self.mode == "online":
            self.teacher.eval()
            return teacher_soft_maps(self.teacher, batch.images, self.t1, self.quantize)[..., : size[0], : size[1]]
        return stack_soft(batch.targets, size, batch.images.device)

    def kd_terms(self, logits: MCFFLogits, batch: Batch) -> dict[str, Tensor]:
        """Unweighted loss terms: ``h``, ``x``, ``y``, ``mix`` (soft labels at T1) and ``real`` (GT at T2)."""
        size = tuple(logits.mix.shape[-2:])
        soft = self.soft_targets(batch, size)
        terms = {
            name: compute_map_loss(self.loss_kind, out, two_channel(soft[:, i : i + 1]), self.t1, self.alpha)
            for i, (name, out) in enumerate(logits._asdict().items())
        }
        gt = soften(self.student.model.gt_target(batch.targets, size, logits.mix.device), self.t0)
        terms["real"] = compute_map_loss(self.loss_kind, logits.mix, gt, self.t2, self.alpha)
        return terms

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        logits = self.student.model.forward_logits(batch.images)
        terms = self.kd_terms(logits, batch)
        out = {f"distill.loss_{k}": terms[k] * self.weight for k in OUTPUTS}
        out["student.loss_mix_for_real"] = terms["real"]
        out["loss"] = sum(out.values())
        return out


def build_mcff_kd(
    student: Task,
    teacher: nn.Module | None = None,
    strategy: str = "standard",
    mode: str = "",
    t0: float | None = None,
    t1: float | None = None,
    loss: str = "asymmetric",
    alpha: float = 200.0,
    quantize: bool = False,
    weight: float = 1.0,
) -> MCFFDistiller:
    """``DISTILLERS["mcff_kd"]``: pick T0/T1 from a strategy (overridable) and check T2 against the student.

    Args:
        strategy: ``standard`` | ``hyperthermal`` | ``non_isothermal`` (see the module docstring).
        mode: ``offline`` or ``online``; empty = online when a teacher is given, else offline.
        t0, t1: override the strategy's values.

    Raises:
        ValueError: unknown strategy, or the student's ``infer_temperature`` is not the strategy's T2.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} not in {list(STRATEGIES)}")
    s_t0, s_t1, s_t2 = STRATEGIES[strategy]
    model = student.model
    if isinstance(model, MCFFNet) and float(model.infer_temperature) != s_t2:
        raise ValueError(
            f"strategy {strategy!r} uses T2={s_t2:g} but the student has infer_temperature="
            f"{model.infer_temperature:g}; set model.params.infer_temperature={s_t2:g}"
        )
    mode = mode or ("online" if teacher is not None else "offline")
    return MCFFDistiller(
        student, teacher, mode, s_t0 if t0 is None else t0, s_t1 if t1 is None else t1, loss, alpha, quantize, weight
    )
