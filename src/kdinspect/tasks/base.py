"""Task contract: the unit the trainer drives.

A Task is an ``nn.Module`` whose ``forward(batch)`` returns a dict of named loss tensors with a required ``"loss"`` key
(the weighted total, what ``backward()`` is called on) and whose ``predict(batch)`` returns one prediction per image in
*original* image coordinates. ``model`` is the deployable network that checkpoints hold; a :class:`Distiller` keeps its
teacher outside ``model`` so that a saved student never contains teacher weights.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from kdinspect.data.structures import Batch, Detections, SegPrediction

__all__ = ["Detections", "SegPrediction", "Task"]


class Task(nn.Module):
    """Base class of training tasks.

    Attributes:
        kind: ``detection`` or ``segmentation``; selects the evaluator and the export wrapper.
        model: the deployable network (what checkpoints save).
        classes: class names, index-aligned with labels.
    """

    kind: ClassVar[str] = ""

    def __init__(self, model: nn.Module, classes: list[str]) -> None:
        super().__init__()
        self.model = model
        self.classes = list(classes)

    def forward(self, batch: Batch) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, batch: Batch) -> list[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def deployable(self) -> nn.Module:
        """The module whose weights a checkpoint stores (the student for distillers)."""
        return self.model

    def trainable(self) -> nn.Module:
        """The module that carries trainable parameters (what DDP wraps)."""
        return self.model
