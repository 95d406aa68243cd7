"""GFL inference: integral box decoding, per-level pre-NMS top-k and batched class-aware NMS.

Everything is vectorised over the batch so the same code runs in eager mode and inside an exported ONNX graph
(``NonMaxSuppression``); test settings follow HSD/GFL: ``nms_pre`` 1000 per level, score threshold 0.05, NMS IoU 0.6,
at most 100 detections per image.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms

from kdinspect.losses.gfl import distance2bbox
from kdinspect.models.heads.gfl_head import integral

__all__ = ["decode_boxes", "flatten_levels", "multiclass_nms", "select_topk_per_level"]


def flatten_levels(maps: list[Tensor]) -> Tensor:
    """Per-level (B, D, H_l, W_l) maps -> (B, A, D) with A = sum H_l * W_l, row-major per level."""
    b = maps[0].shape[0]
    return torch.cat([m.permute(0, 2, 3, 1).reshape(b, -1, m.shape[1]) for m in maps], dim=1)


def decode_boxes(reg: Tensor, centres: Tensor, strides: Tensor, reg_max: int, image_size: tuple[int, int]) -> Tensor:
    """Integral decoding of distribution logits into boxes clipped to the image.

    Args:
        reg: (B, K, 4 * (reg_max + 1)) distribution logits.
        centres: (B, K, 2) or (K, 2) anchor centres in input pixels.
        strides: (B, K) or (K,) stride of each anchor.
        reg_max: largest bin.
        image_size: (H, W) of the network input.

    Returns:
        (B, K, 4) xyxy input pixels.
    """
    b, k = reg.shape[:2]
    dist = integral(reg, reg_max) * strides.expand(b, k)[..., None]  # (B, K, 4) pixels
    boxes = distance2bbox(centres.expand(b, k, 2).reshape(-1, 2), dist.reshape(-1, 4)).reshape(b, k, 4)
    h, w = image_size
    return torch.stack(
        [boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h), boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)],
        dim=-1,
    )


def select_topk_per_level(
    cls: Tensor, reg: Tensor, centres: Tensor, strides: Tensor, num_per_level: list[int], nms_pre: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Keep the ``nms_pre`` anchors with the highest max-class logit on each level (all of a level if it is smaller).

    When no level has more than ``nms_pre`` anchors (or ``nms_pre <= 0``) every anchor is kept in anchor order, with
    no sort: NMS ranks them by score anyway, and the exported graph skips the TopK / Gather work.

    Args:
        cls: (B, A, C) logits; reg: (B, A, D); centres: (A, 2); strides: (A,).

    Returns:
        cls (B, K, C), reg (B, K, D), centres (B, K, 2), strides (B, K).
    """
    b = cls.shape[0]
    if nms_pre <= 0 or all(n <= nms_pre for n in num_per_level):  # every anchor is kept: skip the sort and gather
        return cls, reg, centres.expand(b, -1, -1), strides.expand(b, -1)
    picks, start = [], 0
    for n in num_per_level:
        level = cls[:, start : start + n].amax(dim=2)  # (B, n)
        k = min(nms_pre, n)
        picks.append(level.topk(k, dim=1).indices + start)
        start += n
    idx = torch.cat(picks, dim=1)  # (B, K)

    def take(t: Tensor) -> Tensor:
        return torch.gather(t, 1, idx[..., None].expand(-1, -1, t.shape[-1]))

    return take(cls), take(reg), take(centres.expand(b, -1, -1)), strides[idx]


def multiclass_nms(boxes: Tensor, scores: Tensor, score_thr: float, iou_thr: float, max_per_img: int) -> Tensor:
    """Class-aware NMS per image over every (box, class) pair scoring above ``score_thr``.

    Args:
        boxes: (B, K, 4) xyxy.
        scores: (B, K, C) probabilities.

    Returns:
        (N, 7) rows ``[batch_index, x1, y1, x2, y2, score, class]``, grouped by decreasing score, at most
        ``max_per_img`` per image.
    """
    b, k, c = scores.shape
    flat = scores.reshape(-1)
    idx = torch.nonzero(flat > score_thr).squeeze(1)
    score = flat[idx]
    box_idx = torch.div(idx, c, rounding_mode="floor")  # index into B*K
    cls = idx - box_idx * c
    img = torch.div(box_idx, k, rounding_mode="floor")
    cand = boxes.reshape(-1, 4)[box_idx]
    keep = batched_nms(cand, score, img * c + cls, iou_thr)  # sorted by decreasing score
    img_k = img[keep]
    onehot = (img_k[:, None] == torch.arange(b, device=boxes.device)[None, :]).to(torch.int64)  # (N, B)
    rank = (onehot.cumsum(0) * onehot).sum(1) - 1  # rank of each detection within its image
    keep = keep[rank < max_per_img]
    return torch.cat(
        [img[keep, None].to(boxes.dtype), cand[keep], score[keep, None], cls[keep, None].to(boxes.dtype)], dim=1
    )
