"""Faster R-CNN with FPN, assembled from torchvision components (DKAN's base detector and Incremental RCNN).

Layout (module paths are what distillation taps and freeze policies address):

- ``backbone``: a ``BACKBONES`` feature extractor returning C2..C5.
- ``neck``: ``torchvision.ops.FeaturePyramidNetwork`` with a max-pool P6; ``neck.layer_blocks.{0..3}`` output P2..P5
  (mmdet's ``neck.fpn_convs.{0..3}``, the FKA taps).
- ``rpn``: torchvision ``RegionProposalNetwork`` (anchors 32..512 on P2..P6, ratios 0.5/1/2).
- ``roi_heads``: torchvision ``RoIHeads`` with ``MultiScaleRoIAlign`` (7x7 on P2..P5), ``TwoMLPHead`` (2 x FC) and a
  linear or cosine box predictor (``roi_heads.box_predictor.cls_score`` is the LKA tap).

Inputs are RGB in [0, 1]; ImageNet mean/std normalisation (torchvision convention, matching torchvision's ImageNet
weights) happens inside the model. The DKAN release uses caffe-style BGR 0-255 inputs with caffe weights; those
weights are not available offline here, so the normalisation follows the weights we can load.
Class indices: dataset class ``k`` is column ``k + 1`` inside the heads (0 = background); outputs use ``k``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from kdinspect.data.structures import Detections, DetTarget
from kdinspect.models.backbones import build_backbone
from kdinspect.models.heads.cosine_head import CosineBoxPredictor, LinearBoxPredictor

__all__ = ["DetectionsGraph", "FasterRCNN", "build_faster_rcnn"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LOSS_NAMES = ("loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox")
_TV_LOSS_KEYS = {
    "loss_objectness": "loss_rpn_cls",
    "loss_rpn_box_reg": "loss_rpn_bbox",
    "loss_classifier": "loss_cls",
    "loss_box_reg": "loss_bbox",
}


class DetectionsGraph(NamedTuple):
    """Exported detector output: dets (N, 7) rows ``[batch_index, x1, y1, x2, y2, score, class]`` in input pixels."""

    dets: Tensor


class FasterRCNN(nn.Module):
    """Two-stage detector: backbone -> FPN -> RPN -> RoIAlign -> 2FC -> linear or cosine predictor.

    Args:
        backbone: module with ``forward(x) -> list[Tensor]`` (C2..C5) and ``out_channels``.
        num_classes: number of foreground classes C (background is added internally).
        fpn_channels: FPN output channels.
        anchor_sizes: one anchor size per level P2..P6 (pixels).
        aspect_ratios: anchor aspect ratios (shared by all levels).
        rpn_pre_nms_top_n: per-level top-k before RPN NMS, (train, test).
        rpn_post_nms_top_n: proposals kept after RPN NMS per image, (train, test).
        rpn_nms_thresh: RPN NMS IoU.
        rpn_batch_size_per_image: anchors sampled per image for the RPN loss.
        roi_sampling_ratio: RoIAlign sampling ratio (0 = adaptive, as in mmdet).
        representation_size: width of the two FC layers.
        cosine_scale: 0 = linear classifier; > 0 = cosine classifier with this scale (TFA/DKAN use 20).
        box_batch_size_per_image: RoIs sampled per image for the box head loss (512 in TFA/DKAN).
        box_positive_fraction: positive fraction of the sampled RoIs.
        score_thresh: minimum class score of a returned detection.
        nms_thresh: per-class NMS IoU at inference.
        detections_per_img: detections kept per image.
        loss_weights: multipliers per loss name (``loss_rpn_cls``, ``loss_rpn_bbox``, ``loss_cls``, ``loss_bbox``).
    """

    # The per-image loops of the RPN / RoI stages (anchors, proposals, per-class NMS) are traced at the export batch,
    # so an ONNX graph of this model runs at batch 1 only; the runtime loops over images (OrtModel.predict_batch).
    supports_dynamic_batch = False

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        fpn_channels: int = 256,
        anchor_sizes: Sequence[int] = (32, 64, 128, 256, 512),
        aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
        rpn_pre_nms_top_n: tuple[int, int] = (2000, 1000),
        rpn_post_nms_top_n: tuple[int, int] = (1000, 1000),
        rpn_nms_thresh: float = 0.7,
        rpn_batch_size_per_image: int = 256,
        roi_sampling_ratio: int = 0,
        representation_size: int = 1024,
        cosine_scale: float = 0.0,
        box_batch_size_per_image: int = 512,
        box_positive_fraction: float = 0.25,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        loss_weights: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if len(anchor_sizes) != 5:
            raise ValueError(f"anchor_sizes needs 5 entries (P2..P6), got {list(anchor_sizes)}")
        unknown = sorted(set(loss_weights or {}) - set(LOSS_NAMES))
        if unknown:
            raise KeyError(f"unknown loss weight(s) {unknown}; valid: {list(LOSS_NAMES)}")
        self.num_classes = num_classes
        self.loss_weights = {name: 1.0 for name in LOSS_NAMES} | dict(loss_weights or {})
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        self.backbone = backbone
        self.neck = FeaturePyramidNetwork(list(backbone.out_channels), fpn_channels, extra_blocks=LastLevelMaxPool())
        anchors = AnchorGenerator(tuple((s,) for s in anchor_sizes), (tuple(aspect_ratios),) * len(anchor_sizes))
        self.rpn = RegionProposalNetwork(
            anchors,
            RPNHead(fpn_channels, len(aspect_ratios)),
            fg_iou_thresh=0.7,
            bg_iou_thresh=0.3,
            batch_size_per_image=rpn_batch_size_per_image,
            positive_fraction=0.5,
            pre_nms_top_n={"training": rpn_pre_nms_top_n[0], "testing": rpn_pre_nms_top_n[1]},
            post_nms_top_n={"training": rpn_post_nms_top_n[0], "testing": rpn_post_nms_top_n[1]},
            nms_thresh=rpn_nms_thresh,
        )
        pool = MultiScaleRoIAlign(["0", "1", "2", "3"], output_size=7, sampling_ratio=roi_sampling_ratio)
        box_head = TwoMLPHead(fpn_channels * 7 * 7, representation_size)
        if cosine_scale > 0:
            predictor: nn.Module = CosineBoxPredictor(representation_size, num_classes + 1, scale=cosine_scale)
        else:
            predictor = LinearBoxPredictor(representation_size, num_classes + 1)
        self.roi_heads = RoIHeads(
            pool,
            box_head,
            predictor,
            fg_iou_thresh=0.5,
            bg_iou_thresh=0.5,
            batch_size_per_image=box_batch_size_per_image,
            positive_fraction=box_positive_fraction,
            bbox_reg_weights=(10.0, 10.0, 5.0, 5.0),
            score_thresh=score_thresh,
            nms_thresh=nms_thresh,
            detections_per_img=detections_per_img,
        )

    def normalize(self, images: Tensor) -> Tensor:
        """images: (B, 3, H, W) RGB in [0, 1] -> ImageNet-normalised."""
        return (images - self.pixel_mean) / self.pixel_std

    def extract_features(self, images: Tensor) -> OrderedDict[str, Tensor]:
        """images: (B, 3, H, W) RGB in [0, 1] -> FPN maps ``"0".."3"`` (P2..P5, strides 4..32) and ``"pool"`` (P6)."""
        feats = self.backbone(self.normalize(images))
        return self.neck(OrderedDict((str(i), f) for i, f in enumerate(feats)))

    @staticmethod
    def to_torchvision_targets(targets: Sequence[DetTarget]) -> list[dict[str, Tensor]]:
        """DetTarget (0-based labels) -> torchvision target dicts (1-based labels, 0 = background)."""
        return [{"boxes": t.boxes.float(), "labels": t.labels.long() + 1} for t in targets]

    def compute_loss(
        self, features: OrderedDict[str, Tensor], images: Tensor, targets: Sequence[DetTarget]
    ) -> dict[str, Tensor]:
        """RPN + RoI-head losses from FPN features (the heads must be in train mode), weighted.

        Args:
            features: output of :meth:`extract_features`.
            images: (B, 3, H, W) the input batch (for anchor generation and image sizes).
            targets: one :class:`DetTarget` per image.
        """
        tv_targets = self.to_torchvision_targets(targets)
        image_list = ImageList(images, [tuple(images.shape[-2:])] * images.shape[0])
        proposals, rpn_losses = self.rpn(image_list, features, tv_targets)
        _, roi_losses = self.roi_heads(features, proposals, image_list.image_sizes, tv_targets)
        raw = {_TV_LOSS_KEYS[k]: v for k, v in {**rpn_losses, **roi_losses}.items()}
        return {k: v * self.loss_weights[k] for k, v in raw.items()}

    def detect(self, features: OrderedDict[str, Tensor], images: Tensor) -> list[Detections]:
        """Detections per image (input pixels, 0-based labels) from FPN features (heads in eval mode)."""
        image_list = ImageList(images, [tuple(images.shape[-2:])] * images.shape[0])
        proposals, _ = self.rpn(image_list, features)
        results, _ = self.roi_heads(features, proposals, image_list.image_sizes)
        return [Detections(r["boxes"], r["scores"], r["labels"] - 1) for r in results]

    def forward(
        self, images: Tensor, targets: Sequence[DetTarget] | None = None
    ) -> dict[str, Tensor] | list[Detections]:
        """Train mode: weighted losses; eval mode: detections per image (input pixels, 0-based labels).

        Args:
            images: (B, 3, H, W) RGB in [0, 1].
            targets: one :class:`DetTarget` per image (train mode only).
        """
        features = self.extract_features(images)
        if self.training:
            if targets is None:
                raise ValueError("FasterRCNN in train mode needs targets")
            return self.compute_loss(features, images, targets)
        return self.detect(features, images)

    def inference_module(self, nms: bool = True) -> nn.Module:
        """Export wrapper: ``images (B, 3, H, W)`` in [0, 1] -> :class:`DetectionsGraph` (NMS always in-graph).

        Raises:
            ValueError: ``nms=False``; a two-stage detector's per-class NMS over class-specific boxes is part of its
                second stage, so there is no host-NMS output layout for it.
        """
        if not nms:
            raise ValueError("FasterRCNN exports only with in-graph NMS (nms=True); host NMS is for dense detectors")
        return _FasterRCNNInference(self)


class _FasterRCNNInference(nn.Module):
    def __init__(self, model: FasterRCNN) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, images: Tensor) -> DetectionsGraph:
        dets = self.model(images)
        rows = [
            torch.cat([torch.full_like(d.scores[:, None], i), d.boxes, d.scores[:, None], d.labels[:, None].float()], 1)
            for i, d in enumerate(dets)
        ]
        return DetectionsGraph(torch.cat(rows, 0))


def build_faster_rcnn(
    num_classes: int,
    backbone: str = "resnet101",
    pretrained: bool = True,
    frozen_stages: int = 1,
    norm_eval: bool = True,
    fpn_channels: int = 256,
    anchor_sizes: Sequence[int] = (32, 64, 128, 256, 512),
    rpn_post_nms_top_n: Sequence[int] = (1000, 1000),
    roi_sampling_ratio: int = 0,
    representation_size: int = 1024,
    cosine_scale: float = 0.0,
    box_batch_size_per_image: int = 512,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_img: int = 100,
) -> FasterRCNN:
    """Build Faster R-CNN + FPN on a ``BACKBONES`` entry (``model.params`` of a run YAML map onto these arguments).

    ``frozen_stages`` follows each backbone's own convention (ResNet: mmdet semantics, 1 = stem + layer1;
    MobileNet: number of leading stages). DKAN's base training uses ResNet-101, frozen_stages 1, frozen BN.
    """
    net = build_backbone(backbone, pretrained=pretrained, frozen_stages=frozen_stages, norm_eval=norm_eval)
    return FasterRCNN(
        net,
        num_classes,
        fpn_channels=fpn_channels,
        anchor_sizes=tuple(anchor_sizes),
        rpn_post_nms_top_n=(int(rpn_post_nms_top_n[0]), int(rpn_post_nms_top_n[1])),
        roi_sampling_ratio=roi_sampling_ratio,
        representation_size=representation_size,
        cosine_scale=cosine_scale,
        box_batch_size_per_image=box_batch_size_per_image,
        score_thresh=score_thresh,
        nms_thresh=nms_thresh,
        detections_per_img=detections_per_img,
    )
