"""A tiny Faster R-CNN (4-level conv backbone, 16-channel FPN) and synthetic boxes for fast detector tests."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kdinspect.data.structures import DetTarget
from kdinspect.models.faster_rcnn import FasterRCNN


class TinyBackbone(nn.Module):
    """Four strided conv stages: strides 4, 8, 16, 32; 8/8/16/16 channels."""

    def __init__(self) -> None:
        super().__init__()
        chans = [3, 8, 8, 16, 16]
        strides = [4, 2, 2, 2]
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 3, strides[i], 1), nn.ReLU()) for i in range(4)
        )
        self.out_channels = chans[1:]
        self.strides = [4, 8, 16, 32]

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


def tiny_faster_rcnn(num_classes: int = 3, cosine_scale: float = 0.0, seed: int = 0) -> FasterRCNN:
    torch.manual_seed(seed)
    return FasterRCNN(
        TinyBackbone(),
        num_classes,
        fpn_channels=16,
        anchor_sizes=(8, 16, 32, 64, 128),
        rpn_pre_nms_top_n=(200, 100),
        rpn_post_nms_top_n=(100, 50),
        representation_size=32,
        cosine_scale=cosine_scale,
        box_batch_size_per_image=32,
        roi_sampling_ratio=2,
    )


def tiny_targets(batch: int = 2, num_classes: int = 3, size: int = 64) -> list[DetTarget]:
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(batch):
        xy = torch.randint(0, size // 2, (2, 2), generator=g).float()
        wh = torch.randint(8, size // 2, (2, 2), generator=g).float()
        out.append(DetTarget(torch.cat([xy, xy + wh], 1), torch.randint(0, num_classes, (2,), generator=g)))
    return out
