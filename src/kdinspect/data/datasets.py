"""Map-style datasets over a :class:`DatasetIndex`, and the batch collate function.

Augmentation randomness is seeded per ``(seed, epoch, index)`` inside ``torch.random.fork_rng``, so a sample is the
same whatever the number of DataLoader workers and after a resume (call ``set_epoch(e)`` at the start of each epoch;
with ``persistent_workers=True`` the workers would keep their own copy of the epoch, so leave it off). The strong
augmentations (mosaic, scale jitter) are off from epoch ``close_strong_at`` on (``data.params.close_strong_aug``).

With an :class:`ImageCache` (``data.cache``) decoded images are kept in memory, up to a size cap, by the process
that reads them: with ``data.workers=0`` (the default) that is the training process, whose cache lives for the whole
run; DataLoader workers are started anew each epoch and their caches with them.

A corrupt or missing file never crashes training: ``__getitem__`` logs a warning naming the file and returns a
:class:`SkippedSample` (falsy, carries the path and reason); :func:`collate` leaves it (or a plain ``None``) out of the
batch and lists it in ``Batch.skipped``, which the trainer counts.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from kdinspect.data.io import ImageReadError, load_image, load_mask, load_soft_label
from kdinspect.data.mosaic import draw_mosaic, mosaic4
from kdinspect.data.structures import (
    Batch,
    DatasetIndex,
    DetRecord,
    DetTarget,
    ImageMeta,
    Sample,
    SegRecord,
    SegTarget,
)
from kdinspect.data.transforms import DetectionTransform, SegmentationTransform

__all__ = [
    "PAD_MULTIPLE",
    "DetectionDataset",
    "ImageCache",
    "SegmentationDataset",
    "SkippedSample",
    "collate",
    "sample_seed",
]

logger = logging.getLogger(__name__)

PAD_MULTIPLE = 32  # batch images are padded to a multiple of this (the largest stride of the models)


@dataclass(frozen=True)
class SkippedSample:
    """Returned instead of a :class:`Sample` when a file cannot be used. Falsy, so ``if not sample`` catches it."""

    path: str
    reason: str

    def __bool__(self) -> bool:
        return False


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """Deterministic 63-bit seed of one sample's augmentation."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def _meta(rec: DetRecord | SegRecord, orig: tuple[int, int], img: Tensor, scale: tuple[float, float]) -> ImageMeta:
    return ImageMeta(
        str(rec.image), rec.image_id, orig, (int(img.shape[-2]), int(img.shape[-1])), scale, dict(rec.extra)
    )


class ImageCache:
    """Decoded images by path, up to ``max_bytes`` in all (later images are decoded on every read, as without a
    cache). Images are returned read-only: transforms copy, never write in place."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self.images: dict[str, np.ndarray] = {}

    def load(self, path: str | Path) -> np.ndarray:
        key = str(path)
        hit = self.images.get(key)
        if hit is not None:
            return hit
        image = load_image(path)
        if self.nbytes + image.nbytes <= self.max_bytes:
            image.setflags(write=False)
            self.images[key] = image
            self.nbytes += image.nbytes
        return image


class _IndexDataset(Dataset):
    task = ""

    def __init__(self, index: DatasetIndex, seed: int = 0, cache: ImageCache | None = None) -> None:
        if index.task != self.task:
            raise ValueError(f"{type(self).__name__} needs a {self.task} index, got task {index.task!r}")
        self.index = index
        self.records = index.records
        self.classes = list(index.classes)
        self.seed = seed
        self.epoch = 0
        self.cache = cache
        self.close_strong_at: int | None = None  # first epoch without mosaic / scale jitter (None: never)

    @property
    def strong_aug(self) -> bool:
        """Whether this epoch uses the strong augmentations (off from ``close_strong_at`` on)."""
        return self.close_strong_at is None or self.epoch < self.close_strong_at

    def _image(self, path: str | Path) -> np.ndarray:
        return self.cache.load(path) if self.cache is not None else load_image(path)

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw of ``epoch`` (call before iterating each epoch)."""
        self.epoch = epoch

    def _skip(self, path: str, reason: str) -> SkippedSample:
        logger.warning("skipping %s: %s", path, reason)
        return SkippedSample(path, reason)

    def __getitem__(self, i: int) -> Sample | SkippedSample:
        rec = self.records[i]
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed(self.seed, self.epoch, i))
                return self._sample(i, rec)
        except ImageReadError as err:
            return self._skip(err.path, err.reason)

    def _sample(self, i: int, rec):
        return self._load(rec)

    def _load(self, rec):  # pragma: no cover - abstract
        raise NotImplementedError


class DetectionDataset(_IndexDataset):
    """Detection samples: ``Sample(image (3, H, W) float32 [0, 1], DetTarget(boxes (N, 4) xyxy input px,
    labels (N,)), ImageMeta)``.

    Args:
        index: a detection index from a reader.
        transform: a :class:`DetectionTransform` (default: eval-mode resize to 256).
        seed: augmentation seed.
        cache: decoded-image cache (``data.cache``).
        mosaic: probability of a 4-image mosaic (:mod:`kdinspect.data.mosaic`) of the ``transform.imgsz`` size; the
            mosaic then goes through the transform like one image. A partner image that cannot be read skips the
            sample (named, as any unreadable file).
    """

    task = "detection"

    def __init__(
        self,
        index: DatasetIndex,
        transform: DetectionTransform | None = None,
        seed: int = 0,
        cache: ImageCache | None = None,
        mosaic: float = 0.0,
    ) -> None:
        super().__init__(index, seed, cache)
        self.transform = transform or DetectionTransform(256, train=False)
        if not 0.0 <= mosaic <= 1.0:
            raise ValueError(f"data.params.mosaic is a probability in [0, 1], got {mosaic}")
        if mosaic > 0 and self.transform.imgsz <= 0:
            raise ValueError("data.params.mosaic needs data.imgsz > 0 (the mosaic side)")
        self.mosaic = float(mosaic)

    def _sample(self, i: int, rec: DetRecord) -> Sample:
        strong = self.strong_aug
        if not (strong and self.mosaic > 0 and float(torch.rand(())) < self.mosaic):
            return self._load(rec, strong)
        size = self.transform.imgsz
        indices, center = draw_mosaic(len(self.records), i, size)
        tiles = [(self._image(r.image), r.boxes, r.labels) for r in (self.records[k] for k in indices)]
        image, boxes, labels = mosaic4(tiles, size, center)
        img, boxes, labels, (sy, sx) = self.transform(image, boxes, labels, strong=strong)
        h, w = tiles[indices.index(i)][0].shape[:2]
        meta = _meta(rec, (h, w), img, (sy * size / h, sx * size / w))
        meta.extra["mosaic"] = [str(self.records[k].image_id) for k in indices]
        return Sample(img, DetTarget(boxes, labels), meta)

    def _load(self, rec: DetRecord, strong: bool = True) -> Sample:
        image = self._image(rec.image)
        h, w = image.shape[:2]
        img, boxes, labels, scale = self.transform(image, rec.boxes, rec.labels, strong=strong)
        return Sample(img, DetTarget(boxes, labels), _meta(rec, (h, w), img, scale))


class SegmentationDataset(_IndexDataset):
    """Segmentation samples: ``Sample(image (3, H, W) float32 [0, 1], SegTarget(mask (H, W) float32 {0, 1},
    soft (C, H, W) | None), ImageMeta)``. Soft labels come from ``record.extra["soft_label"]``.

    Args:
        index: a segmentation index from a reader.
        transform: a :class:`SegmentationTransform` (default: full-resolution eval).
        seed: augmentation seed.
        cache: decoded-image cache (``data.cache``).
    """

    task = "segmentation"

    def __init__(
        self,
        index: DatasetIndex,
        transform: SegmentationTransform | None = None,
        seed: int = 0,
        cache: ImageCache | None = None,
    ) -> None:
        super().__init__(index, seed, cache)
        self.transform = transform or SegmentationTransform(0, train=False)

    def _load(self, rec: SegRecord) -> Sample:
        image = self._image(rec.image)
        h, w = image.shape[:2]
        if rec.mask is None:
            mask = np.zeros((h, w), dtype=np.uint8)
        else:
            mask = load_mask(rec.mask, rec.mask_format, rec.extra.get("extra_labels", "background"))
            if mask.shape != (h, w):
                raise ImageReadError(rec.mask, f"mask size {mask.shape[::-1]} differs from image size {(w, h)}")
        soft_path = rec.extra.get("soft_label")
        soft = load_soft_label(soft_path) if soft_path else None
        if soft is not None and soft.shape[-2:] != (h, w):
            raise ImageReadError(str(soft_path), f"soft-label size {soft.shape[:0:-1]} differs from image {(w, h)}")
        img, m, s, scale = self.transform(image, mask, soft, strong=self.strong_aug)
        target = SegTarget(m, s) if rec.mask is not None else None
        return Sample(img, target, _meta(rec, (h, w), img, scale))


def _pad_to(x: Tensor, h: int, w: int) -> Tensor:
    """Zero-pad the last two dims of ``x`` at the bottom/right to (h, w)."""
    return F.pad(x, (0, w - x.shape[-1], 0, h - x.shape[-2]))


def collate(samples: list[Sample | SkippedSample | None]) -> Batch:
    """Stack samples into a :class:`Batch`.

    Skipped samples (``SkippedSample`` or ``None``) are left out and listed in ``Batch.skipped`` (``None`` as
    ``"<unknown>"``). Images are zero-padded bottom/right to the largest size rounded up to a multiple of
    :data:`PAD_MULTIPLE`; masks, soft labels and reference images (``Batch.references``, when every sample has one)
    are padded with 0. An all-skipped batch has (0, 3, 0, 0) images.
    """
    kept = [s for s in samples if isinstance(s, Sample)]
    skipped = [s.path if isinstance(s, SkippedSample) else "<unknown>" for s in samples if not isinstance(s, Sample)]
    if not kept:
        return Batch(torch.zeros(0, 3, 0, 0), [], [], skipped)
    h = math.ceil(max(s.image.shape[-2] for s in kept) / PAD_MULTIPLE) * PAD_MULTIPLE
    w = math.ceil(max(s.image.shape[-1] for s in kept) / PAD_MULTIPLE) * PAD_MULTIPLE
    images = torch.stack([_pad_to(s.image, h, w) for s in kept])
    with_ref = [s.reference is not None for s in kept]
    if any(with_ref) and not all(with_ref):
        lacking = [s.meta.path for s in kept if s.reference is None]
        raise ValueError(f"a batch mixes samples with and without a reference image; without: {lacking[:3]}")
    references = torch.stack([_pad_to(s.reference, h, w) for s in kept]) if all(with_ref) else None
    targets = []
    for s in kept:
        t = s.target
        if isinstance(t, SegTarget):
            t = SegTarget(_pad_to(t.mask, h, w), None if t.soft is None else _pad_to(t.soft, h, w))
        targets.append(t)
    return Batch(images, targets, [s.meta for s in kept], skipped, references)
