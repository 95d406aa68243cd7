"""GFL (GFocal v1) one-stage detector with ATSS assignment: the HSD teacher and student.

GFL: Li et al., arXiv:2006.04388; ATSS: Zhang et al., arXiv:1912.02424; HSD: Zhang et al., arXiv:2307.00701.

``GFL(backbone, neck, head)``: in train mode ``forward(images, targets)`` returns the weighted losses ``loss_cls``
(FC), ``loss_bbox`` (FR, GIoU), ``loss_dfl`` (FD); in eval mode ``forward(images)`` returns ``list[Detections]`` in
input pixels after NMS. ``forward_raw``, ``assign`` and ``compute_loss`` stay separate so the HSD distiller can reuse
the student's head outputs and positives.

Loss normalisation (as released): FC = sum over all anchors / N_pos; FR = 2.0 * sum_i w_i (1 - GIoU_i) / W;
FD = 0.25 * sum_{i,side} w_i DFL_{i,side} / 4 / W; w_i = max_c sigmoid(student cls logit), detached; W = sum_i w_i.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from kdinspect.data.structures import Detections, DetTarget
from kdinspect.losses.gfl import (
    aligned_iou,
    bbox2distance,
    distance2bbox,
    distribution_focal_loss,
    giou_loss,
    quality_focal_loss,
    sigmoid_bce_loss,
)
from kdinspect.models.heads.atss import atss_assign, grid_anchors
from kdinspect.models.heads.gfl_decode import decode_boxes, flatten_levels, multiclass_nms, select_topk_per_level
from kdinspect.models.heads.gfl_head import GFLHead, integral

__all__ = ["CLS_LOSSES", "GFL", "GFLAssignment", "GFLInference", "GFLOutputs"]

CLS_LOSSES = ("bce", "qfl")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class GFLOutputs(NamedTuple):
    """Raw head outputs, flattened over levels. cls: (B, A, C) logits; reg: (B, A, 4 * (reg_max + 1)) logits."""

    cls: Tensor
    reg: Tensor
    sizes: list[tuple[int, int]]
    image_size: tuple[int, int]


class GFLAssignment(NamedTuple):
    """ATSS targets of a batch, flattened over images and anchors (index = image * A + anchor).

    Attributes:
        labels: (B * A,) int64 class of each anchor; ``num_classes`` = background.
        pos_index: (P,) flat indices of the positive anchors.
        pos_boxes: (P, 4) their ground-truth boxes, xyxy input pixels.
        centres: (P, 2) their anchor centres in input pixels.
        strides: (P,) their strides.
    """

    labels: Tensor
    pos_index: Tensor
    pos_boxes: Tensor
    centres: Tensor
    strides: Tensor


class DetsOutput(NamedTuple):
    """ONNX outputs with in-graph NMS. dets: (N, 7) ``[batch_index, x1, y1, x2, y2, score, class]``."""

    dets: Tensor


class RawOutput(NamedTuple):
    """ONNX outputs without NMS. boxes: (B, A, 4) xyxy input pixels; scores: (B, A, C) probabilities."""

    boxes: Tensor
    scores: Tensor


class GFL(nn.Module):
    """Backbone -> neck (P3..P7) -> GFL head, with ATSS training targets and GFL losses.

    Args:
        backbone: module with the backbone contract returning C3..C5.
        neck: module mapping C3..C5 to the pyramid; must expose ``strides``.
        head: the GFL head.
        cls_loss: ``bce`` (released HSD: plain sigmoid BCE) or ``qfl`` (GFL's quality focal loss).
        loss_bbox_weight: GIoU weight (2.0).
        loss_dfl_weight: DFL weight (0.25).
        topk: ATSS candidates per level.
        octave_base_scale: anchor side in strides for the ATSS IoUs.
        center_offset: anchor centre offset in strides (0 = mmdet 2.x).
        nms_pre: anchors kept per level before NMS.
        score_thr: minimum score of a detection.
        nms_iou: NMS IoU threshold.
        max_per_img: maximum detections per image.
    """

    def __init__(
        self,
        backbone: nn.Module,
        neck: nn.Module,
        head: GFLHead,
        cls_loss: str = "bce",
        loss_bbox_weight: float = 2.0,
        loss_dfl_weight: float = 0.25,
        topk: int = 9,
        octave_base_scale: float = 8.0,
        center_offset: float = 0.0,
        nms_pre: int = 1000,
        score_thr: float = 0.05,
        nms_iou: float = 0.6,
        max_per_img: int = 100,
    ) -> None:
        super().__init__()
        if cls_loss not in CLS_LOSSES:
            raise ValueError(f"cls_loss {cls_loss!r} not in {list(CLS_LOSSES)}")
        self.backbone, self.neck, self.head = backbone, neck, head
        self.strides: list[int] = list(neck.strides)
        self.num_classes = head.num_classes
        self.reg_max = head.reg_max
        self.cls_loss = cls_loss
        self.loss_bbox_weight, self.loss_dfl_weight = loss_bbox_weight, loss_dfl_weight
        self.topk, self.octave_base_scale, self.center_offset = topk, octave_base_scale, center_offset
        self.nms_pre, self.score_thr, self.nms_iou, self.max_per_img = nms_pre, score_thr, nms_iou, max_per_img
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # ---------------------------------------------------------------- raw forward
    def forward_raw(self, images: Tensor) -> GFLOutputs:
        """images: (B, 3, H, W) RGB in [0, 1] -> flattened head outputs (normalisation happens here)."""
        feats = self.neck(self.backbone((images - self.mean) / self.std))
        cls_scores, bbox_preds = self.head(feats)
        sizes = [(int(c.shape[-2]), int(c.shape[-1])) for c in cls_scores]
        return GFLOutputs(flatten_levels(cls_scores), flatten_levels(bbox_preds), sizes, tuple(images.shape[-2:]))

    def anchors(self, outputs: GFLOutputs) -> tuple[Tensor, Tensor, list[int]]:
        """(A, 4) anchor boxes, (A,) strides and anchors per level for these outputs."""
        return grid_anchors(outputs.sizes, self.strides, self.octave_base_scale, self.center_offset, outputs.cls.device)

    # ---------------------------------------------------------------- training
    def assign(self, outputs: GFLOutputs, targets: list[DetTarget]) -> GFLAssignment:
        """ATSS assignment of every image's anchors to its ground-truth boxes."""
        anchors, strides, counts = self.anchors(outputs)
        num_anchors = anchors.shape[0]
        labels, pos_index, pos_boxes = [], [], []
        for i, tgt in enumerate(targets):
            gt = tgt.boxes.to(anchors)
            assigned = atss_assign(anchors, counts, gt, self.topk)
            lab = torch.full((num_anchors,), self.num_classes, dtype=torch.long, device=anchors.device)
            pos = torch.nonzero(assigned >= 0).squeeze(1)
            lab[pos] = tgt.labels.to(anchors.device)[assigned[pos]]
            labels.append(lab)
            pos_index.append(pos + i * num_anchors)
            pos_boxes.append(gt[assigned[pos]])
        pos_idx = torch.cat(pos_index)
        anchor_idx = pos_idx % num_anchors
        centres = (anchors[anchor_idx, :2] + anchors[anchor_idx, 2:]) / 2
        return GFLAssignment(torch.cat(labels), pos_idx, torch.cat(pos_boxes), centres, strides[anchor_idx])

    def positive_weights(self, outputs: GFLOutputs, assignment: GFLAssignment) -> Tensor:
        """(P,) w_i = max_c sigmoid(cls logit) at the positives, detached (the FR/FD/LD sample weights)."""
        cls = outputs.cls.reshape(-1, self.num_classes)[assignment.pos_index]
        return cls.detach().sigmoid().amax(dim=1)

    def positive_reg(self, outputs: GFLOutputs, assignment: GFLAssignment) -> Tensor:
        """(P * 4, reg_max + 1) distribution logits of the positives, one row per box side."""
        return outputs.reg.reshape(-1, outputs.reg.shape[-1])[assignment.pos_index].reshape(-1, self.reg_max + 1)

    def compute_loss(self, outputs: GFLOutputs, assignment: GFLAssignment) -> dict[str, Tensor]:
        """Weighted ``loss_cls``, ``loss_bbox`` and ``loss_dfl`` (normalisations in the module docstring)."""
        cls = outputs.cls.reshape(-1, self.num_classes)  # (B*A, C)
        num_pos = max(float(assignment.pos_index.numel()), 1.0)
        pos_reg = self.positive_reg(outputs, assignment)  # (P*4, R+1)
        if assignment.pos_index.numel() == 0:
            zero = outputs.reg.sum() * 0.0
            return {
                "loss_cls": self._cls_loss(cls, assignment.labels, None).sum() / num_pos,
                "loss_bbox": zero,
                "loss_dfl": zero,
            }
        s = assignment.strides[:, None]
        points = assignment.centres / s  # stride units
        target = assignment.pos_boxes / s.expand(-1, 4)
        pred = distance2bbox(points, integral(pos_reg.reshape(-1, 4 * (self.reg_max + 1)), self.reg_max))
        weight = self.positive_weights(outputs, assignment)
        total_w = weight.sum().clamp(min=1e-6)
        scores = cls.new_zeros(cls.shape[0])
        scores[assignment.pos_index] = aligned_iou(pred.detach(), target).to(scores.dtype)  # bf16 under autocast
        dfl = distribution_focal_loss(pos_reg, bbox2distance(points, target, self.reg_max).reshape(-1))
        return {
            "loss_cls": self._cls_loss(cls, assignment.labels, scores).sum() / num_pos,
            "loss_bbox": self.loss_bbox_weight * (weight * giou_loss(pred, target)).sum() / total_w,
            "loss_dfl": self.loss_dfl_weight * (weight.repeat_interleave(4) * dfl).sum() / 4.0 / total_w,
        }

    def _cls_loss(self, cls: Tensor, labels: Tensor, scores: Tensor | None) -> Tensor:
        if self.cls_loss == "qfl":
            return quality_focal_loss(
                cls, labels, scores if scores is not None else torch.zeros_like(labels, dtype=cls.dtype)
            )
        return sigmoid_bce_loss(cls, labels)

    # ---------------------------------------------------------------- inference
    def decode(self, outputs: GFLOutputs) -> tuple[Tensor, Tensor]:
        """Pre-NMS candidates: boxes (B, K, 4) xyxy input pixels and scores (B, K, C) after per-level top-k."""
        anchors, strides, counts = self.anchors(outputs)
        centres = (anchors[:, :2] + anchors[:, 2:]) / 2
        cls, reg, ctr, st = select_topk_per_level(outputs.cls, outputs.reg, centres, strides, counts, self.nms_pre)
        return decode_boxes(reg, ctr, st, self.reg_max, outputs.image_size), cls.sigmoid()

    def postprocess(self, outputs: GFLOutputs) -> Tensor:
        """(N, 7) detections ``[batch_index, x1, y1, x2, y2, score, class]`` after NMS."""
        boxes, scores = self.decode(outputs)
        return multiclass_nms(boxes, scores, self.score_thr, self.nms_iou, self.max_per_img)

    def forward(self, images: Tensor, targets: list[DetTarget] | None = None) -> dict[str, Tensor] | list[Detections]:
        """Train mode: weighted loss dict (needs ``targets``); eval mode: ``list[Detections]`` in input pixels."""
        return self.losses_or_detections(self.forward_raw(images), targets, images.shape[0])

    def losses_or_detections(
        self, outputs: GFLOutputs, targets: list[DetTarget] | None, batch: int
    ) -> dict[str, Tensor] | list[Detections]:
        """What ``forward`` returns for raw head outputs: the weighted losses in train mode, else the detections of
        each of the ``batch`` images (shared by every GFL variant whatever its inputs)."""
        if self.training:
            if targets is None:
                raise ValueError("GFL in train mode needs targets; call .eval() for inference")
            return self.compute_loss(outputs, self.assign(outputs, targets))
        dets = self.postprocess(outputs)
        b = dets[:, 0].long()
        return [Detections(dets[b == i, 1:5], dets[b == i, 5], dets[b == i, 6].long()) for i in range(batch)]

    def graph_outputs(self, outputs: GFLOutputs, nms: bool) -> DetsOutput | RawOutput:
        """The exported graph's outputs (ONNX contract): detections after NMS, or every anchor's boxes and class
        scores for NMS on the host."""
        if nms:
            return DetsOutput(self.postprocess(outputs))
        anchors, strides, _ = self.anchors(outputs)
        centres = (anchors[:, :2] + anchors[:, 2:]) / 2
        boxes = decode_boxes(outputs.reg, centres, strides, self.reg_max, outputs.image_size)
        return RawOutput(boxes, outputs.cls.sigmoid())

    def inference_module(self, nms: bool = True) -> GFLInference:
        """Export wrapper (ONNX contract): ``images -> DetsOutput(dets)`` or ``RawOutput(boxes, scores)``."""
        return GFLInference(self, nms)


class GFLInference(nn.Module):
    """``images (B, 3, H, W) RGB [0, 1]`` -> :class:`DetsOutput` (in-graph NMS) or :class:`RawOutput` (host NMS)."""

    def __init__(self, model: GFL, nms: bool = True) -> None:
        super().__init__()
        self.model = model
        self.nms = nms

    def forward(self, images: Tensor) -> DetsOutput | RawOutput:
        m = self.model
        outputs = m.forward_raw(images)
        return m.graph_outputs(outputs, self.nms)
