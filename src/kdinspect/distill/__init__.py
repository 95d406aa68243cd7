"""Distillation: taps, generic losses and the Distiller task wrapper."""

from kdinspect.distill.distiller import Distiller, freeze
from kdinspect.distill.losses import channel_wise_divergence, feature_mse, kd_kl, pixel_kd_kl
from kdinspect.distill.taps import FeatureTaps

__all__ = ["Distiller", "FeatureTaps", "channel_wise_divergence", "feature_mse", "freeze", "kd_kl", "pixel_kd_kl"]
