"""HSD distillation: localisation distillation (LD) from a frozen GFL teacher on the student's positives (§1.4).

The teacher runs under ``no_grad`` on the same augmented, padded batch as the student and returns its raw
box-distribution logits; both detectors share strides and anchors, so anchor ``i`` of the student lines up with
anchor ``i`` of the teacher. For each student positive ``i`` (ATSS) and box side ``e``:

``loss_ld = weight * sum_{i,e} w_i * KL_T(p^T_{i,e} || p^S_{i,e}) / 4`` (``ld_norm="released"``), optionally also
divided by ``W = sum_i w_i`` (``ld_norm="avg_weight"``), with ``w_i`` the student's detached max class probability and
``KL_T`` the LD KL at temperature T (mean over the 17 bins, times T^2). Only positives are distilled; there is no
classification KD. The student's own loss terms (FC, FR, FD) are kept unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kdinspect.data.structures import Batch
from kdinspect.distill.distiller import Distiller
from kdinspect.losses.gfl import ld_kl_loss
from kdinspect.models.gfl import GFL
from kdinspect.models.pair import reference_kwargs
from kdinspect.tasks.base import Task

__all__ = ["LD_NORMS", "HSDDistiller", "build_hsd_ld"]

LD_NORMS = ("released", "avg_weight")


class HSDDistiller(Distiller):
    """Student GFL task + frozen GFL teacher with the LD KL term.

    Args:
        student: detection task whose ``model`` is a :class:`GFL` (the HSD student).
        teacher: trained :class:`GFL` (the HSD teacher); frozen here and never saved with the student.
        temperature: LD temperature T (15 in HSD).
        weight: LD loss weight (0.25 in HSD).
        ld_norm: ``released`` (divide by 4) or ``avg_weight`` (divide by 4 and by W).
    """

    def __init__(
        self,
        student: Task,
        teacher: nn.Module,
        temperature: float = 15.0,
        weight: float = 0.25,
        ld_norm: str = "released",
    ) -> None:
        if not isinstance(student.model, GFL):
            raise TypeError(f"HSD distillation needs a GFL student, got {type(student.model).__name__}")
        if not isinstance(teacher, GFL):
            raise TypeError(f"HSD distillation needs a GFL teacher, got {type(teacher).__name__}")
        if teacher.strides != student.model.strides or teacher.reg_max != student.model.reg_max:
            raise ValueError(
                f"teacher (strides {teacher.strides}, reg_max {teacher.reg_max}) and student (strides "
                f"{student.model.strides}, reg_max {student.model.reg_max}) must share strides and reg_max"
            )
        if ld_norm not in LD_NORMS:
            raise ValueError(f"ld_norm {ld_norm!r} not in {list(LD_NORMS)}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        super().__init__(student, teacher, weight)
        self.temperature = temperature
        self.ld_norm = ld_norm

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        """Student FC/FR/FD losses + the weighted LD term; keys ``student.*``, ``distill.loss_ld`` and ``loss``."""
        model: GFL = self.student.model
        out_s = model.forward_raw(batch.images, **reference_kwargs(model, batch))
        assignment = model.assign(out_s, batch.targets)
        losses = model.compute_loss(out_s, assignment)
        with torch.no_grad():
            # a reference-aware teacher sees the pair too; a single-image teacher the image alone
            out_t = self.teacher.forward_raw(batch.images, **reference_kwargs(self.teacher, batch, strict=False))
        if out_t.reg.shape != out_s.reg.shape:
            raise ValueError(
                f"teacher outputs {tuple(out_t.reg.shape)} do not line up with the student's {tuple(out_s.reg.shape)}"
            )
        bins = model.reg_max + 1
        s_reg = model.positive_reg(out_s, assignment)  # (P*4, bins)
        t_reg = out_t.reg.reshape(-1, out_t.reg.shape[-1])[assignment.pos_index].reshape(-1, bins)
        w = model.positive_weights(out_s, assignment)
        ld = (w.repeat_interleave(4) * ld_kl_loss(s_reg, t_reg, self.temperature)).sum() / 4.0
        if self.ld_norm == "avg_weight":
            ld = ld / w.sum().clamp(min=1e-6)
        out = {f"student.{k}": v for k, v in losses.items()}
        out["distill.loss_ld"] = self.weight * ld
        out["loss"] = sum(out.values())
        return out


def build_hsd_ld(
    student: Task, teacher: nn.Module, temperature: float = 15.0, weight: float = 0.25, ld_norm: str = "released"
) -> HSDDistiller:
    """``DISTILLERS["hsd_ld"]``: see :class:`HSDDistiller`."""
    return HSDDistiller(student, teacher, temperature=temperature, weight=weight, ld_norm=ld_norm)
