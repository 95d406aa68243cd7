"""A compact U-Net for binary defect segmentation (the demo teacher/student and a generic baseline)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdinspect.data.structures import SegTarget
from kdinspect.losses.functional import bce_dice_loss

__all__ = ["SegOutput", "UNet"]


class SegOutput(NamedTuple):
    """prob: (B, 1, H, W) defect probability."""

    prob: Tensor


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "gn":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm {kind!r} not in ['bn', 'gn', 'none']")


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: str) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=norm == "none"),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=norm == "none"),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net with ``depth`` down-samplings and ``width * 2**i`` channels at level i.

    Args:
        num_classes: must be 1 (binary defect / background).
        width: channels of the first level.
        depth: number of 2x down-samplings (inputs must be multiples of ``2**depth``; batches are padded to 32).
        norm: ``bn`` | ``gn`` | ``none``.
        dice_weight: weight of the Dice term added to BCE.
        pos_weight: BCE weight of defect pixels (thin cracks are ~3 % of pixels).
    """

    def __init__(
        self,
        num_classes: int = 1,
        width: int = 16,
        depth: int = 4,
        norm: str = "bn",
        dice_weight: float = 1.0,
        pos_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if num_classes != 1:
            raise ValueError(f"UNet is a binary segmenter; num_classes must be 1, got {num_classes}")
        chans = [width * 2**i for i in range(depth + 1)]
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        self.down = nn.ModuleList([_DoubleConv(3, chans[0], norm)])
        self.down.extend(_DoubleConv(chans[i], chans[i + 1], norm) for i in range(depth))
        self.up = nn.ModuleList(nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in reversed(range(depth)))
        self.fuse = nn.ModuleList(_DoubleConv(2 * chans[i], chans[i], norm) for i in reversed(range(depth)))
        self.head = nn.Conv2d(chans[0], 1, 1)
        self.depth = depth
        self.dice_weight = dice_weight
        self.pos_weight = pos_weight

    def forward_logits(self, images: Tensor) -> Tensor:
        """images: (B, 3, H, W) RGB in [0, 1] -> (B, 1, H, W) logits."""
        x = (images - self.mean) / self.std
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for up, fuse, skip in zip(self.up, self.fuse, reversed(skips[:-1])):
            x = fuse(torch.cat([up(x), skip], dim=1))
        return self.head(x)

    def compute_loss(self, logits: Tensor, targets: list[SegTarget]) -> dict[str, Tensor]:
        mask = torch.stack([t.mask for t in targets]).unsqueeze(1).to(logits.dtype)
        return bce_dice_loss(logits, mask, self.dice_weight, self.pos_weight)

    def forward(self, images: Tensor, targets: list[SegTarget] | None = None) -> dict[str, Tensor] | SegOutput:
        logits = self.forward_logits(images)
        if self.training:
            if targets is None:
                raise ValueError("UNet in train mode needs targets")
            return self.compute_loss(logits, targets)
        return SegOutput(torch.sigmoid(logits))

    def inference_module(self) -> nn.Module:
        return _UNetInference(self)


class _UNetInference(nn.Module):
    def __init__(self, net: UNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: Tensor) -> SegOutput:
        return SegOutput(torch.sigmoid(self.net.forward_logits(images)))
