"""Segmentation task: glue between a segmenter module and the trainer/evaluator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdinspect.data.structures import Batch
from kdinspect.tasks.base import SegPrediction, Task

__all__ = ["SegmentationTask", "restore_prob"]


def restore_prob(prob: Tensor, input_size: tuple[int, int], orig_size: tuple[int, int]) -> Tensor:
    """Crop batch padding off a (H, W) probability map and resize it to the original image size."""
    h, w = input_size
    prob = prob[:h, :w]
    if (h, w) != tuple(orig_size):
        prob = F.interpolate(prob[None, None], size=tuple(orig_size), mode="bilinear", align_corners=False)[0, 0]
    return prob


class SegmentationTask(Task):
    """Wraps a segmenter whose train-mode ``forward(images, targets)`` returns weighted losses and whose eval-mode
    ``forward(images)`` returns an object with a ``prob`` field of shape (B, 1, H, W) (defect probability)."""

    kind = "segmentation"

    def __init__(self, model: nn.Module, classes: list[str]) -> None:
        super().__init__(model, classes)

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        losses = self.model(batch.images, batch.targets)
        return {"loss": sum(losses.values()), **losses}

    @torch.no_grad()
    def predict(self, batch: Batch) -> list[SegPrediction]:
        was_training = self.model.training
        self.model.eval()
        prob = self.model(batch.images).prob[:, 0].float()
        self.model.train(was_training)
        return [SegPrediction(restore_prob(p, m.input_size, m.orig_size)) for p, m in zip(prob, batch.metas)]
