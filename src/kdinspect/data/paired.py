"""Image + reference pairs: the paired detection transform and dataset (reference-aware detection).

:class:`PairedDetectionTransform` applies ONE draw of the geometric ops (flips, resize) to the test image, its
reference and the boxes (``torchvision.transforms.v2`` on ``tv_tensors``: both images are ``tv_tensors.Image`` in one
call, so they share the random parameters), and a SEPARATE colour-jitter draw to each image (a real reference is
shot under other light). :class:`PairedDetectionDataset` loads ``record.extra["reference"]``, resizes it to the
image when the sizes differ and optionally registers it onto the image (``align``: ``ecc``/``orb``, see
:mod:`kdinspect.deploy.align`) before the transform.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

from kdinspect.data.datasets import DetectionDataset, _meta
from kdinspect.data.io import ImageReadError, load_image
from kdinspect.data.structures import DatasetIndex, DetRecord, DetTarget, Sample
from kdinspect.data.transforms import _det_resize, _flips, _to_image
from kdinspect.deploy.align import ALIGN_METHODS, move, register

__all__ = ["PairedDetectionDataset", "PairedDetectionTransform"]


class PairedDetectionTransform:
    """Detection pipeline for (image, reference) pairs: [h-flip, v-flip] (train, shared) -> resize (shared) ->
    ``SanitizeBoundingBoxes`` (train) -> float [0, 1] -> [colour jitter, one draw per image] (train).

    Args: as :class:`~kdinspect.data.transforms.DetectionTransform`.
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
    ) -> None:
        ops: list[v2.Transform] = list(_flips(hflip, vflip)) if train else []
        ops += _det_resize(imgsz, train, resize, scales, max_size)
        if train:
            ops.append(v2.SanitizeBoundingBoxes(min_size=1.0))
        ops.append(v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True))
        self.imgsz = imgsz
        self.train = train
        self.geometry = v2.Compose(ops)
        self.jitter = (
            v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter) if train and jitter > 0 else None
        )

    def __call__(
        self, image: np.ndarray, reference: np.ndarray, boxes: np.ndarray, labels: np.ndarray
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, tuple[float, float]]:
        """Transform one pair and its boxes.

        Args:
            image: (H, W, 3) uint8 RGB test image.
            reference: (H, W, 3) uint8 RGB reference of the same size.
            boxes: (N, 4) xyxy pixels; labels: (N,) int64.

        Returns:
            image and reference (3, h, w) float32 in [0, 1], boxes (M, 4), labels (M,), scale (sy, sx).
        """
        if reference.shape != image.shape:
            raise ValueError(f"reference shape {reference.shape} differs from image shape {image.shape}")
        img, ref = _to_image(image), _to_image(reference)
        h, w = image.shape[:2]
        sample = {
            "image": img,
            "reference": ref,
            "boxes": tv_tensors.BoundingBoxes(
                torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4), format="XYXY", canvas_size=(h, w)
            ),
            "labels": torch.as_tensor(labels, dtype=torch.int64).reshape(-1),
        }
        out = self.geometry(sample)  # one call: the two images share every random parameter
        out_img, out_ref = out["image"], out["reference"]
        if self.jitter is not None:
            out_img, out_ref = self.jitter(out_img), self.jitter(out_ref)  # two independent draws
        oh, ow = out_img.shape[-2:]
        return (
            out_img.as_subclass(Tensor),
            out_ref.as_subclass(Tensor),
            out["boxes"].as_subclass(Tensor),
            out["labels"],
            (oh / h, ow / w),
        )


class PairedDetectionDataset(DetectionDataset):
    """Detection samples with ``Sample.reference`` (3, H, W) float32 [0, 1], geometrically aligned to ``image``.

    Args:
        index: a detection index whose records carry ``extra["reference"]`` (see
            :func:`~kdinspect.data.references.attach_references`).
        transform: a :class:`PairedDetectionTransform`.
        seed: augmentation seed.
        align: ``none``, ``ecc`` or ``orb``: register the reference onto the image first (a failed registration logs
            a warning naming the file and uses the reference unaligned).
        perturb: ``(dx, dy, degrees)``: move every reference by this much before registration (robustness checks:
            how a model copes with misaligned references, with and without ``align``); None = no change.
    """

    def __init__(
        self,
        index: DatasetIndex,
        transform: PairedDetectionTransform | None = None,
        seed: int = 0,
        align: str = "none",
        perturb: tuple[float, float, float] | None = None,
    ) -> None:
        if align not in ALIGN_METHODS:
            raise ValueError(f"data.params.align {align!r} not in {list(ALIGN_METHODS)}")
        super().__init__(index, None, seed)
        self.transform = transform or PairedDetectionTransform(256, train=False)  # type: ignore[assignment]
        self.align = align
        if perturb is not None and len(perturb) != 3:
            raise ValueError(f"data.params.reference_perturb must be [dx, dy, degrees], got {perturb!r}")
        self.perturb = None if perturb is None else tuple(float(v) for v in perturb)

    def _load(self, rec: DetRecord, strong: bool = True) -> Sample:  # no strong (mosaic / scale) augmentation yet
        image = load_image(rec.image)
        h, w = image.shape[:2]
        ref_path = rec.extra.get("reference")
        if ref_path is None:
            raise ImageReadError(str(rec.image), "no reference image (data.params.reference)")
        reference = load_image(ref_path)
        if self.perturb is not None:
            reference = move(reference, *self.perturb)
        reference = register(image, reference, method=self.align, name=str(rec.image)).reference
        img, ref, boxes, labels, scale = self.transform(image, reference, rec.boxes, rec.labels)
        return Sample(img, DetTarget(boxes, labels), _meta(rec, (h, w), img, scale), reference=ref)
