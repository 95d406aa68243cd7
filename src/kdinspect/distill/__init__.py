"""Distillation: taps, generic losses, the Distiller task wrapper and ``DISTILLERS`` (method name -> builder).

A builder has the signature ``build(student: Task, teacher: nn.Module, **params) -> Distiller``.
"""

from __future__ import annotations

from collections.abc import Callable

from kdinspect.distill.distiller import Distiller, freeze
from kdinspect.distill.dkan import DKANDistiller, build_dkan
from kdinspect.distill.ld import HSDDistiller, build_hsd_ld
from kdinspect.distill.losses import channel_wise_divergence, feature_mse, kd_kl
from kdinspect.distill.mcff_kd import MCFFDistiller, build_mcff_kd
from kdinspect.distill.pixel_kd import PixelKD, build_pixel_kd
from kdinspect.distill.taps import FeatureTaps

__all__ = [
    "DISTILLERS",
    "DKANDistiller",
    "Distiller",
    "FeatureTaps",
    "HSDDistiller",
    "MCFFDistiller",
    "PixelKD",
    "channel_wise_divergence",
    "feature_mse",
    "freeze",
    "kd_kl",
]

DISTILLERS: dict[str, Callable[..., Distiller]] = {
    "mcff_kd": build_mcff_kd,
    "pixel_kd": build_pixel_kd,
    "dkan": build_dkan,
    "hsd_ld": build_hsd_ld,
}
