"""Detection task: glue between a detector module and the trainer/evaluator."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kdinspect.data.structures import Batch
from kdinspect.models.pair import reference_kwargs
from kdinspect.tasks.base import Detections, Task

__all__ = ["DetectionTask", "rescale_detections"]


def rescale_detections(dets: Detections, scale: tuple[float, float], orig_size: tuple[int, int]) -> Detections:
    """Map detections from input pixels back to original pixels and clip them to the image.

    Args:
        dets: detections in input pixels.
        scale: (sy, sx) with input = original * scale.
        orig_size: (H, W) of the original image.
    """
    sy, sx = scale
    boxes = dets.boxes / dets.boxes.new_tensor([sx, sy, sx, sy])
    h, w = orig_size
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    return Detections(boxes, dets.scores, dets.labels)


class DetectionTask(Task):
    """Wraps a detector whose train-mode ``forward(images, targets)`` returns weighted losses and whose eval-mode
    ``forward(images)`` returns ``list[Detections]`` in input pixels. A reference-aware detector (``takes_reference``)
    also gets ``references=batch.references`` (docs/template.md)."""

    kind = "detection"

    def __init__(self, model: nn.Module, classes: list[str]) -> None:
        super().__init__(model, classes)

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        losses = self.model(batch.images, batch.targets, **reference_kwargs(self.model, batch))
        return {"loss": sum(losses.values()), **losses}

    @torch.no_grad()
    def predict(self, batch: Batch) -> list[Detections]:
        was_training = self.model.training
        self.model.eval()
        dets = self.model(batch.images, **reference_kwargs(self.model, batch))
        self.model.train(was_training)
        return [rescale_detections(d, m.scale, m.orig_size) for d, m in zip(dets, batch.metas)]
