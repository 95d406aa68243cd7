"""A ``segmentation_models_pytorch`` network as a kdinspect segmenter (the MCFF-L benchmark's peer).

The peer is trained exactly like MCFF-L Net: two output channels (0 = crack, 1 = background), the same ground-truth
dilation switch and the same loss (the released asymmetric loss by default). Encoder weights are never downloaded
(``encoder_weights=None``: random initialisation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdinspect.data.structures import SegTarget
from kdinspect.losses.segmentation import compute_map_loss
from kdinspect.models.mcff.net import MCFFOutput
from kdinspect.models.mcff.targets import check_gt_options, gt_two_channel

__all__ = ["SMPSegmenter"]

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _import_smp():
    try:
        import segmentation_models_pytorch as smp
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the smp peer needs segmentation-models-pytorch: pip install 'kdinspect[bench]'") from err
    return smp


class SMPSegmenter(nn.Module):
    """An smp architecture (``Unet`` by default) with a randomly initialised encoder.

    Args:
        num_classes: must be 1 (crack).
        arch: smp architecture class name (``Unet``, ``UnetPlusPlus``, ``FPN``, ...).
        encoder: smp encoder name; ``tu-*`` names are timm encoders.
        decoder_channels: U-Net decoder widths (ignored by architectures without the argument).
        loss: ``asymmetric`` | ``kl`` | ``bce_dice`` (see :mod:`kdinspect.losses.segmentation`).
        alpha: crack-channel scale of the asymmetric loss.
        gt_dilation: ``released`` | ``3x3`` | ``none`` (see :func:`~kdinspect.models.mcff.targets.dilate_mask`).
        gt_dilation_iters: dilation iterations.
        multiple: input sizes are zero-padded to a multiple of this (the encoder's output stride).
    """

    def __init__(
        self,
        num_classes: int = 1,
        arch: str = "Unet",
        encoder: str = "tu-mobilenetv3_small_100",
        decoder_channels: Sequence[int] = (32, 24, 16, 16, 8),
        loss: str = "asymmetric",
        alpha: float = 200.0,
        gt_dilation: str = "released",
        gt_dilation_iters: int = 3,
        multiple: int = 32,
    ) -> None:
        super().__init__()
        if num_classes != 1:
            raise ValueError(f"SMPSegmenter segments one class; got num_classes={num_classes}")
        check_gt_options(loss, gt_dilation)
        smp = _import_smp()
        if not hasattr(smp, arch):
            raise ValueError(f"unknown smp architecture {arch!r}")
        kwargs = {"decoder_channels": tuple(decoder_channels)} if arch in ("Unet", "UnetPlusPlus") else {}
        self.net = getattr(smp, arch)(encoder, encoder_weights=None, in_channels=3, classes=2, **kwargs)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.loss_kind, self.alpha = loss, alpha
        self.gt_dilation, self.gt_dilation_iters = gt_dilation, gt_dilation_iters
        self.multiple = multiple

    def forward_logits(self, images: Tensor) -> Tensor:
        """images: (B, 3, H, W) RGB in [0, 1] -> (B, 2, H, W) logits (channel 0 = crack)."""
        h, w = images.shape[-2:]
        x = F.pad((images - self.mean) / self.std, (0, -w % self.multiple, 0, -h % self.multiple))
        return self.net(x)[..., :h, :w]

    def forward(
        self, images: Tensor, targets: Sequence[SegTarget | None] | None = None
    ) -> dict[str, Tensor] | MCFFOutput:
        """Train mode with targets: ``{"loss_seg"}``. Otherwise ``MCFFOutput(prob (B, 1, H, W))``."""
        logits = self.forward_logits(images)
        if self.training and targets is not None:
            size = tuple(logits.shape[-2:])
            gt = gt_two_channel(targets, size, logits.device, self.gt_dilation, self.gt_dilation_iters)
            return {"loss_seg": compute_map_loss(self.loss_kind, logits, gt, 1.0, self.alpha)}
        return MCFFOutput(torch.softmax(logits, dim=1)[:, :1])

    def inference_module(self, nms: bool = True) -> nn.Module:
        """The module itself in eval mode returns ``MCFFOutput(prob)``; ``nms`` is ignored."""
        return self
