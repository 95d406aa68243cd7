"""Models. ``MODELS`` is the one place a model name typed in a config is looked up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from kdinspect.models.faster_rcnn import build_faster_rcnn
from kdinspect.models.hsd import hsd_student, hsd_teacher
from kdinspect.models.mcff import mcff_student, mcff_student_dw, mcff_student_lite, mcff_teacher
from kdinspect.models.pair import hsd_student_ref, hsd_teacher_ref
from kdinspect.models.registry import ModelSpec, check_params
from kdinspect.models.smp_peer import SMPSegmenter
from kdinspect.models.unet import UNet

__all__ = ["MODELS", "ModelSpec", "build_model"]

MODELS: dict[str, ModelSpec] = {
    "hsd_teacher": ModelSpec(hsd_teacher, "detection", "hsd_ld", "HSD teacher: GFL, backbone + FPN (3x3) + HKH head"),
    "hsd_student": ModelSpec(hsd_student, "detection", "hsd_ld", "HSD student: GFL, backbone + HKN + HKH head"),
    "hsd_teacher_ref": ModelSpec(
        hsd_teacher_ref, "detection", "hsd_ld", "HSD teacher with a reference input (image + template; fusion)"
    ),
    "hsd_student_ref": ModelSpec(
        hsd_student_ref, "detection", "hsd_ld", "HSD student with a reference input (image + template; fusion)"
    ),
    "mcff_teacher": ModelSpec(mcff_teacher, "segmentation", "mcff_kd", "MCFF-L Net teacher (d=64, 8 blocks, 32.9M)"),
    "mcff_student": ModelSpec(mcff_student, "segmentation", "mcff_kd", "MCFF-L Net student MCL (d=16, 1.18M)"),
    "mcff_student_dw": ModelSpec(mcff_student_dw, "segmentation", "mcff_kd", "MCFF-L student MCLD (depthwise, 0.41M)"),
    "mcff_student_lite": ModelSpec(
        mcff_student_lite, "segmentation", "mcff_kd", "MCFF-L lite: student paths at 1/4 res, d=10 (0.5M)"
    ),
    "unet": ModelSpec(
        UNet, "segmentation", "pixel_kd", "compact U-Net for binary defect segmentation (demo, baseline)"
    ),
    "faster_rcnn_fpn": ModelSpec(
        build=build_faster_rcnn,
        task="detection",
        distill="dkan",
        description="Faster R-CNN + FPN (torchvision parts), linear or cosine classifier (DKAN)",
    ),
    "smp_unet": ModelSpec(SMPSegmenter, "segmentation", "", "segmentation_models_pytorch U-Net, random init (peer)"),
}


def build_model(
    name: str | Callable[..., nn.Module], num_classes: int, params: dict[str, Any] | None = None
) -> nn.Module:
    """Build a model by ``MODELS`` name (or from a callable / ``"pkg.module:Name"`` import path).

    Raises:
        KeyError: unknown name (the message lists the valid ones).
        TypeError: a parameter the model's builder does not accept.
    """
    params = dict(params or {})
    if isinstance(name, str) and ":" in name:
        import importlib

        module, attr = name.split(":", 1)
        name = getattr(importlib.import_module(module), attr)
    if callable(name):
        check_params(name, params, f"model {name!r}")
        return name(num_classes=num_classes, **params)
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; valid: {sorted(MODELS)}")
    spec = MODELS[name]
    check_params(spec.build, params, f"model {name!r}")
    return spec.build(num_classes=num_classes, **params)
