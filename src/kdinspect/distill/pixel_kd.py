"""Pixel-wise logit distillation for binary segmenters exposing ``forward_logits`` and ``compute_loss``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kdinspect.data.structures import Batch
from kdinspect.distill.distiller import Distiller
from kdinspect.losses.functional import binary_kd_loss
from kdinspect.tasks.base import Task

__all__ = ["PixelKD", "build_pixel_kd"]


class PixelKD(Distiller):
    """Student loss on ground truth + ``weight * T^2 * KL`` between temperature-softened teacher and student maps.

    Args:
        student: the student segmentation task (its model has ``forward_logits`` and ``compute_loss``).
        teacher: a frozen segmenter with ``forward_logits``.
        temperature: softening temperature T.
        weight: weight of the KD term.
    """

    def __init__(self, student: Task, teacher: nn.Module, temperature: float = 4.0, weight: float = 1.0) -> None:
        super().__init__(student, teacher, weight)
        for name, obj in (("student", student.model), ("teacher", teacher)):
            if not hasattr(obj, "forward_logits"):
                raise TypeError(f"pixel_kd needs a {name} model with forward_logits(); got {type(obj).__name__}")
        self.temperature = temperature

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        logits = self.model.forward_logits(batch.images)
        sup = self.model.compute_loss(logits, batch.targets)
        teacher_logits = self._teacher_logits(batch.images)
        kd = self.weight * binary_kd_loss(logits, teacher_logits, self.temperature)
        out = {f"student.{k}": v for k, v in sup.items()}
        out["distill.loss_kd"] = kd
        out["loss"] = sum(sup.values()) + kd
        return out

    @torch.no_grad()
    def _teacher_logits(self, images: Tensor) -> Tensor:
        self.teacher.eval()
        return self.teacher.forward_logits(images)


def build_pixel_kd(student: Task, teacher: nn.Module, temperature: float = 4.0, weight: float = 1.0) -> PixelKD:
    return PixelKD(student, teacher, temperature=temperature, weight=weight)
