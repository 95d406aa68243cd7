"""Backbones: ``BACKBONES[name](**kwargs)`` returns a module with ``out_channels`` and ``strides``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from kdinspect.models.backbones.torchvision_nets import MobileNetFeatures, ResNetFeatures
from kdinspect.models.backbones.weights import find_weights, load_pretrained

__all__ = ["BACKBONES", "MobileNetFeatures", "ResNetFeatures", "build_backbone", "find_weights", "load_pretrained"]

BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "resnet18": partial(ResNetFeatures, 18),
    "resnet34": partial(ResNetFeatures, 34),
    "resnet50": partial(ResNetFeatures, 50),
    "resnet101": partial(ResNetFeatures, 101),
    "mobilenet_v2": partial(MobileNetFeatures, "mobilenet_v2"),
    "mobilenet_v3_large": partial(MobileNetFeatures, "mobilenet_v3_large"),
    "mobilenet_v3_small": partial(MobileNetFeatures, "mobilenet_v3_small"),
}


def build_backbone(name: str | Callable[..., nn.Module], **kwargs: object) -> nn.Module:
    """Build a backbone by name (or from a callable); unknown names raise ``KeyError`` listing the valid ones."""
    if callable(name):
        return name(**kwargs)
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; valid: {sorted(BACKBONES)}")
    return BACKBONES[name](**kwargs)
