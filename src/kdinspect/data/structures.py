"""Plain data structures shared by readers, datasets, tasks and evaluators."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "Batch",
    "DatasetIndex",
    "DetRecord",
    "DetTarget",
    "Detections",
    "ImageMeta",
    "Problem",
    "Sample",
    "SegPrediction",
    "SegRecord",
    "SegTarget",
]

TaskKind = Literal["detection", "segmentation"]


@dataclass
class Problem:
    """One problem found in a dataset, always tied to the file it concerns.

    Attributes:
        path: file the problem is about.
        kind: short machine-readable kind (``corrupt_image``, ``corrupt_mask``, ``box_outside_image``,
            ``zero_area_box``, ``unknown_class``, ``missing_annotation``, ``missing_image``, ``missing_mask``,
            ``missing_soft_label``, ``mask_size_mismatch``, ``size_mismatch``, ``bad_annotation``,
            ``crowd_annotation``, ``missing_split_entry``, ``duplicate_split_entry``, ``mask_values``,
            ``unexpected_class``, ``missing_reference``, ``reference_size_mismatch``; see docs/datasets.md and
            docs/template.md).
        message: human-readable explanation.
        severity: ``error`` (data is wrong or unusable) or ``warning`` (data was repaired, e.g. a box clipped).
        action: what the reader did about it (``skipped image``, ``box clipped``, ``box rejected`` ...).
    """

    path: str
    kind: str
    message: str
    severity: Literal["error", "warning"] = "error"
    action: str = ""

    def __str__(self) -> str:
        act = f" [{self.action}]" if self.action else ""
        return f"{self.severity.upper()} {self.kind}: {self.path}: {self.message}{act}"


@dataclass
class DetRecord:
    """Annotation of one detection image, as read from disk (before any transform).

    Attributes:
        image: image file.
        boxes: (N, 4) float32 xyxy pixels in the original image.
        labels: (N,) int64 indices into the dataset's class list.
        image_id: stable id (file stem unless the format has its own ids).
        width: original image width in pixels (0 if unknown until decoded).
        height: original image height in pixels.
        extra: format-specific fields (e.g. ``template`` path for DeepPCB pairs).
    """

    image: Path
    boxes: np.ndarray
    labels: np.ndarray
    image_id: str
    width: int = 0
    height: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SegRecord:
    """One segmentation image and where its mask comes from.

    Attributes:
        image: image file.
        mask: mask file (PNG, or a CrackForest ``.mat``/``.seg``), or None when the image has no annotation.
        image_id: stable id (file stem).
        mask_format: how to decode ``mask`` (``png``, ``crackforest-mat``, ``crackforest-seg``).
        width: original width (0 if unknown).
        height: original height (0 if unknown).
        extra: format-specific fields (e.g. ``soft_label`` path for offline distillation targets).
    """

    image: Path
    mask: Path | None
    image_id: str
    mask_format: str = "png"
    width: int = 0
    height: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class DatasetIndex:
    """What a reader returns: the records of one split, the class list and every problem found."""

    task: TaskKind
    classes: list[str]
    records: list[Any]
    problems: list[Problem] = field(default_factory=list)
    root: Path | None = None
    split: str = ""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


@dataclass
class ImageMeta:
    """Per-image bookkeeping that travels with a sample through the batch.

    Attributes:
        path: source image path.
        image_id: id from the record.
        orig_size: (H, W) of the decoded original image.
        input_size: (H, W) of the image after transforms, before batch padding.
        scale: (sy, sx) factors mapping original pixels to input pixels (input = original * scale).
        extra: record extras (e.g. soft-label path) passed through.
    """

    path: str
    image_id: str
    orig_size: tuple[int, int]
    input_size: tuple[int, int]
    scale: tuple[float, float] = (1.0, 1.0)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class DetTarget:
    """Detection target. boxes: (N, 4) float32 xyxy input pixels; labels: (N,) int64."""

    boxes: Tensor
    labels: Tensor

    def to(self, device: torch.device | str) -> DetTarget:
        return DetTarget(self.boxes.to(device), self.labels.to(device))


@dataclass
class SegTarget:
    """Segmentation target. mask: (H, W) float32 in {0, 1} (1 = defect); soft: optional (C, H, W) soft labels."""

    mask: Tensor
    soft: Tensor | None = None

    def to(self, device: torch.device | str) -> SegTarget:
        return SegTarget(self.mask.to(device), None if self.soft is None else self.soft.to(device))


@dataclass
class Sample:
    """One transformed image. image: (3, H, W) float32 RGB in [0, 1]; reference: the defect-free reference of the
    same view (golden board, DeepPCB template), transformed with the same geometry, or None (single-image mode)."""

    image: Tensor
    target: DetTarget | SegTarget | None
    meta: ImageMeta
    reference: Tensor | None = None


@dataclass
class Batch:
    """A collated batch.

    Attributes:
        images: (B, 3, H, W) float32 RGB in [0, 1], zero-padded at the bottom/right to a common size.
        targets: one target per image (None entries for unlabelled images).
        metas: one :class:`ImageMeta` per image.
        skipped: files that could not be loaded and were left out of this batch (reported, never silent).
        references: (B, 3, H, W) reference images padded like ``images``, or None (single-image mode).
    """

    images: Tensor
    targets: list[Any]
    metas: list[ImageMeta]
    skipped: list[str] = field(default_factory=list)
    references: Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> Batch:
        targets = [t.to(device) if t is not None else None for t in self.targets]
        refs = None if self.references is None else self.references.to(device, non_blocking=True)
        return Batch(self.images.to(device, non_blocking=True), targets, self.metas, self.skipped, refs)


# ----------------------------------------------------------------------------------------------------------------------
# Predictions (what models and tasks return in eval mode; evaluators and the export check read them)


class Detections(NamedTuple):
    """Detections of one image. boxes: (N, 4) xyxy pixels; scores: (N,); labels: (N,) int64 class indices."""

    boxes: Tensor
    scores: Tensor
    labels: Tensor


class SegPrediction(NamedTuple):
    """Segmentation of one image. prob: (H, W) float32 defect probability at the original image size."""

    prob: Tensor
