"""Paired image/target transforms on ``torchvision.transforms.v2`` and ``tv_tensors``.

Boxes (``tv_tensors.BoundingBoxes``) and masks (``tv_tensors.Mask``) are transformed together with the image, so a flip,
crop or resize moves them consistently. Randomness comes from torch's global generator; datasets seed it per
``(seed, epoch, index)`` inside ``torch.random.fork_rng``.

Every transform returns the image as float32 ``(3, H, W)`` RGB in [0, 1] and the scale ``(sy, sx)`` that maps original
pixels to output pixels (``input = original * scale``; 1 for crops and flips).

Strong augmentation (``scale_jitter``; the dataset adds the mosaic) is applied when the call says ``strong=True``; the
dataset turns it off for the last epochs (``data.params.close_strong_aug``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = ["RESIZE_MODES", "DetectionTransform", "SegmentationTransform", "check_scale_range"]


def check_scale_range(value: object) -> tuple[float, float] | None:
    """``data.params.scale_jitter`` as ``(min, max)`` with ``0 < min <= max`` (None/empty: off)."""
    if value is None or value == [] or value == ():
        return None
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"data.params.scale_jitter must be [min, max] scale factors, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not 0 < lo <= hi:
        raise ValueError(f"data.params.scale_jitter must satisfy 0 < min <= max, got {value!r}")
    return lo, hi


def _jitter(strength: float) -> list[v2.Transform]:
    if strength <= 0:
        return []
    return [v2.ColorJitter(brightness=strength, contrast=strength, saturation=strength)]


def _flips(hflip: float, vflip: float) -> list[v2.Transform]:
    ops: list[v2.Transform] = []
    if hflip > 0:
        ops.append(v2.RandomHorizontalFlip(hflip))
    if vflip > 0:
        ops.append(v2.RandomVerticalFlip(vflip))
    return ops


def _to_image(image: np.ndarray) -> tv_tensors.Image:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    if not image.flags.writeable:  # a cached image (data.cache) is shared: never let a transform write into it
        image = image.copy()
    return tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))


RESIZE_MODES = ("square", "short")


def _det_resize(imgsz: int, train: bool, resize: str, scales: list[int] | None, max_size: int) -> list[v2.Transform]:
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {list(RESIZE_MODES)}, got {resize!r}")
    if imgsz <= 0:
        return []
    if resize == "square":
        return [v2.Resize((imgsz, imgsz), antialias=True)]
    cap = max_size if max_size > 0 else None
    if train and scales:
        return [v2.RandomShortestSize(min_size=list(scales), max_size=cap, antialias=True)]
    return [v2.Resize(imgsz, max_size=cap, antialias=True)]


class DetectionTransform:
    """Detection pipeline: [h-flip, v-flip, colour jitter] (train only) -> resize -> ``SanitizeBoundingBoxes`` (train
    only: drops boxes under 1 px, e.g. after a resize) -> float [0, 1].

    Resize modes: ``square`` (default) is a plain resize to ``(imgsz, imgsz)``. ``short`` keeps the aspect ratio: the
    short side becomes ``imgsz`` (training: a random choice of ``scales`` when given, mmdet's multi-scale
    ``multiscale_mode='value'``) unless the long side would exceed ``max_size``, in which case the long side becomes
    ``max_size`` (mmdet's ``keep_ratio=True`` resize to ``(max_size, imgsz)``; e.g. HSD uses (712, 500), DKAN trains
    with short sides 640-800 and long side <= 1333).

    Scale jitter (``square`` only, train): after the resize, the image is scaled by a random factor in
    ``scale_jitter`` (``v2.ScaleJitter``) and randomly cropped, or zero-padded, back to ``(imgsz, imgsz)``
    (``v2.RandomCrop``), the large-scale-jitter recipe; boxes are clipped and those left under 1 px dropped.

    Args:
        imgsz: square size (``square``) or short side (``short``); 0 keeps the original size.
        train: apply the random ops and box sanitising.
        hflip: horizontal flip probability.
        vflip: vertical flip probability.
        jitter: ColorJitter brightness/contrast/saturation strength (0 = off).
        resize: ``square`` or ``short``.
        scales: ``short`` only: training short-side choices (default: ``imgsz``).
        max_size: ``short`` only: long-side cap (0 = none).
        scale_jitter: ``(min, max)`` scale factors (None = off); a strong augmentation.
    """

    def __init__(
        self,
        imgsz: int,
        train: bool,
        hflip: float = 0.5,
        vflip: float = 0.0,
        jitter: float = 0.0,
        resize: str = "square",
        scales: list[int] | None = None,
        max_size: int = 0,
        scale_jitter: tuple[float, float] | None = None,
    ) -> None:
        ops: list[v2.Transform] = [*_flips(hflip, vflip), *_jitter(jitter)] if train else []
        ops += _det_resize(imgsz, train, resize, scales, max_size)
        strong: list[v2.Transform] = []
        if train and scale_jitter is not None:
            if resize != "square" or imgsz <= 0:
                raise ValueError("data.params.scale_jitter needs resize=square and data.imgsz > 0 for detection")
            strong = [
                v2.ScaleJitter((imgsz, imgsz), scale_range=scale_jitter, antialias=True),
                v2.RandomCrop(imgsz, pad_if_needed=True, fill=0),
            ]
        tail: list[v2.Transform] = [v2.SanitizeBoundingBoxes(min_size=1.0)] if train else []
        tail.append(v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True))
        self.imgsz = imgsz
        self.train = train
        self.pipeline = v2.Compose(ops + strong + tail)
        self.weak_pipeline = v2.Compose(ops + tail) if strong else self.pipeline

    def __call__(
        self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, strong: bool = True
    ) -> tuple[Tensor, Tensor, Tensor, tuple[float, float]]:
        """Transform one image and its boxes.

        Args:
            image: (H, W, 3) uint8 RGB.
            boxes: (N, 4) xyxy pixels.
            labels: (N,) int64.
            strong: apply the strong augmentations (scale jitter) if configured.

        Returns:
            image (3, h, w) float32 in [0, 1], boxes (M, 4) float32 xyxy output pixels, labels (M,) int64,
            scale (sy, sx).
        """
        img = _to_image(image)
        h, w = image.shape[:2]
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4), format="XYXY", canvas_size=(h, w)
            ),
            "labels": torch.as_tensor(labels, dtype=torch.int64).reshape(-1),
        }
        out_img, out = (self.pipeline if strong else self.weak_pipeline)(img, target)
        oh, ow = out_img.shape[-2:]
        return out_img.as_subclass(Tensor), out["boxes"].as_subclass(Tensor), out["labels"], (oh / h, ow / w)


class SegmentationTransform:
    """Segmentation pipeline. Train: random crop of ``crop`` (zero-padded when the image is smaller) -> flips ->
    [colour jitter]. Eval: the full image, or a plain resize to ``(eval_size, eval_size)`` when ``eval_size > 0``
    (masks and soft labels use nearest-neighbour interpolation). With ``scale_jitter`` (train, strong) the image and
    its masks are first scaled by a random factor in ``[min, max]`` (masks nearest), so the crop sees objects at
    several scales.

    Args:
        crop: training crop size; 0 = no crop.
        train: apply the random ops.
        eval_size: evaluation resize (0 = full resolution).
        hflip: horizontal flip probability.
        vflip: vertical flip probability.
        jitter: ColorJitter strength (0 = off).
        scale_jitter: ``(min, max)`` rescale factors before the crop (None = off); a strong augmentation.
    """

    def __init__(
        self,
        crop: int,
        train: bool,
        eval_size: int = 0,
        hflip: float = 0.5,
        vflip: float = 0.5,
        jitter: float = 0.0,
        scale_jitter: tuple[float, float] | None = None,
    ) -> None:
        ops: list[v2.Transform] = []
        if train:
            if crop > 0:
                ops.append(v2.RandomCrop(crop, pad_if_needed=True, fill=0))
            ops += [*_flips(hflip, vflip), *_jitter(jitter)]
        elif eval_size > 0:
            ops.append(v2.Resize((eval_size, eval_size), antialias=True))
        ops.append(v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True))
        self.train = train
        self.resizes = not train and eval_size > 0
        self.scale_jitter = scale_jitter if train else None
        self.pipeline = v2.Compose(ops)

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, soft: np.ndarray | None = None, strong: bool = True
    ) -> tuple[Tensor, Tensor, Tensor | None, tuple[float, float]]:
        """Transform one image with its mask (and soft labels).

        Args:
            image: (H, W, 3) uint8 RGB.
            mask: (H, W) {0, 1}.
            soft: optional (C, H, W) float soft labels.
            strong: apply the strong augmentations (scale jitter) if configured.

        Returns:
            image (3, h, w) float32 in [0, 1], mask (h, w) float32 {0, 1}, soft (C, h, w) float32 or None,
            scale (sy, sx).
        """
        img = _to_image(image)
        h, w = image.shape[:2]
        if mask.shape != (h, w):
            raise ValueError(f"mask shape {mask.shape} differs from image shape {(h, w)}")
        inputs: dict[str, Tensor] = {"mask": tv_tensors.Mask(torch.as_tensor(mask, dtype=torch.float32))}
        if soft is not None:
            if soft.shape[-2:] != (h, w):
                raise ValueError(f"soft-label shape {soft.shape} differs from image shape {(h, w)}")
            inputs["soft"] = tv_tensors.Mask(torch.as_tensor(soft, dtype=torch.float32))
        scale = (1.0, 1.0)
        if self.scale_jitter is not None and strong:
            lo, hi = self.scale_jitter
            r = lo + (hi - lo) * float(torch.rand(()))
            size = [max(1, round(h * r)), max(1, round(w * r))]
            img = v2.functional.resize(img, size, antialias=True)
            inputs = {k: v2.functional.resize(v, size) for k, v in inputs.items()}  # Mask: nearest
            scale = (size[0] / h, size[1] / w)
        out_img, out = self.pipeline(img, inputs)
        oh, ow = out_img.shape[-2:]
        if self.resizes:
            scale = (oh / h, ow / w)
        soft_out = out["soft"].as_subclass(Tensor) if soft is not None else None
        return out_img.as_subclass(Tensor), out["mask"].as_subclass(Tensor), soft_out, scale
