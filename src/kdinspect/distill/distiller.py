"""Distiller: a Task that wraps a student Task with a frozen teacher network."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from kdinspect.data.structures import Batch
from kdinspect.tasks.base import Task

__all__ = ["Distiller", "freeze"]


def freeze(module: nn.Module) -> nn.Module:
    """Freeze all parameters and put the module (BN included) in eval mode."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()


class Distiller(Task):
    """Student task + frozen teacher. ``forward`` returns ``student.*`` and ``distill.*`` terms and their sum.

    Subclasses implement :meth:`distill_losses`; they receive the batch, the student's loss dict and the student
    task, and run the teacher themselves (under ``torch.no_grad()``), typically through :meth:`run_teacher`.

    The teacher is stored outside ``model`` so it is neither optimised, wrapped by DDP nor written to checkpoints.

    Args:
        student: the student task (its ``model`` is what gets trained and saved).
        teacher: the teacher network; it is frozen here. None for offline methods whose targets come with the
            batch (e.g. stored soft labels).
        weight: global multiplier on the distillation terms.
    """

    def __init__(self, student: Task, teacher: nn.Module | None, weight: float = 1.0) -> None:
        super().__init__(student.model, student.classes)
        self.kind = student.kind  # type: ignore[misc]
        self.student = student
        # not a registered submodule: never saved/optimised
        object.__setattr__(self, "teacher", None if teacher is None else freeze(teacher))
        self.weight = weight

    def to(self, *args: Any, **kwargs: Any) -> Distiller:  # keep the unregistered teacher on the same device
        super().to(*args, **kwargs)
        if self.teacher is not None:
            self.teacher.to(*args, **kwargs)
        return self

    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    @torch.no_grad()
    def run_teacher(self, *args: Any, **kwargs: Any) -> Any:
        if self.teacher is None:
            raise RuntimeError(f"{type(self).__name__} was built without a teacher (offline mode)")
        self.teacher.eval()
        return self.teacher(*args, **kwargs)

    def distill_losses(self, batch: Batch, student_out: dict[str, Tensor]) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        student_out = self.student(batch)
        distill = self.distill_losses(batch, student_out)
        out = {f"student.{k}": v for k, v in student_out.items() if k != "loss"}
        out.update({f"distill.{k}": v * self.weight for k, v in distill.items()})
        out["loss"] = student_out["loss"] + sum(out[f"distill.{k}"] for k in distill)
        return out

    @torch.no_grad()
    def predict(self, batch: Batch) -> list[Any]:
        return self.student.predict(batch)

    def deployable(self) -> nn.Module:
        return self.student.model
