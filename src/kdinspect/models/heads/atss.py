"""Anchor points and the ATSS assigner (Zhang et al. 2020) as configured in GFL/HSD.

GFL places one square anchor of side ``octave_base_scale * stride`` (8 * stride) at every feature-map location; its
centre is ``(x * stride, y * stride)`` (mmdet 2.x ``center_offset = 0``), row-major per level, levels concatenated.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_iou

__all__ = ["atss_assign", "grid_anchors"]

INF = 1e8


def grid_anchors(
    sizes: list[tuple[int, int]],
    strides: list[int],
    octave_base_scale: float = 8.0,
    center_offset: float = 0.0,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor, list[int]]:
    """Anchor boxes of every level, concatenated.

    Args:
        sizes: (H_l, W_l) of each level.
        strides: stride of each level.
        octave_base_scale: anchor side in strides.
        center_offset: anchor centre offset in strides (0 = mmdet 2.x; 0.5 = cell centres).

    Returns:
        anchors: (A, 4) xyxy input pixels.
        stride_per_anchor: (A,) float stride of each anchor.
        num_per_level: anchors per level.
    """
    boxes, strides_out, counts = [], [], []
    for (h, w), s in zip(sizes, strides):
        ys = (torch.arange(h, device=device, dtype=torch.float32) + center_offset) * s
        xs = (torch.arange(w, device=device, dtype=torch.float32) + center_offset) * s
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")
        centres = torch.stack([cx.reshape(-1), cy.reshape(-1)], dim=1)  # (H*W, 2), index = y * W + x
        half = octave_base_scale * s / 2
        boxes.append(torch.cat([centres - half, centres + half], dim=1))
        strides_out.append(torch.full((h * w,), float(s), device=device))
        counts.append(h * w)
    return torch.cat(boxes), torch.cat(strides_out), counts


def atss_assign(anchors: Tensor, num_per_level: list[int], gt_boxes: Tensor, topk: int = 9) -> Tensor:
    """Adaptive training sample selection.

    For every ground-truth box: take the ``topk`` anchors per level whose centres are closest to the box centre;
    their IoU threshold is mean + std (unbiased) of those candidates' IoUs; a candidate is positive if its IoU reaches
    the threshold and its centre lies inside the box (by more than 0.01 px). An anchor claimed by several boxes goes
    to the one with the highest IoU.

    Args:
        anchors: (A, 4) xyxy anchor boxes, levels concatenated.
        num_per_level: anchors per level (sums to A).
        gt_boxes: (M, 4) xyxy ground-truth boxes.
        topk: candidates per level and box.

    Returns:
        (A,) int64: index of the assigned ground-truth box, -1 for background.
    """
    num_anchors, num_gt = anchors.shape[0], gt_boxes.shape[0]
    assigned = torch.full((num_anchors,), -1, dtype=torch.long, device=anchors.device)
    if num_gt == 0 or num_anchors == 0:
        return assigned
    overlaps = box_iou(anchors, gt_boxes)  # (A, M)
    anchor_ctr = (anchors[:, :2] + anchors[:, 2:]) / 2
    gt_ctr = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    distances = torch.cdist(anchor_ctr, gt_ctr)  # (A, M)

    candidates, start = [], 0
    for n in num_per_level:
        k = min(topk, n)
        _, idx = distances[start : start + n].topk(k, dim=0, largest=False)  # (k, M)
        candidates.append(idx + start)
        start += n
    cand = torch.cat(candidates, dim=0)  # (K, M) anchor indices
    gt_idx = torch.arange(num_gt, device=anchors.device)
    cand_iou = overlaps[cand, gt_idx]  # (K, M)
    thr = cand_iou.mean(0) + cand_iou.std(0)
    is_pos = cand_iou >= thr[None, :]

    ctr = anchor_ctr[cand]  # (K, M, 2)
    inside = (
        torch.stack(
            [
                ctr[..., 0] - gt_boxes[:, 0],
                ctr[..., 1] - gt_boxes[:, 1],
                gt_boxes[:, 2] - ctr[..., 0],
                gt_boxes[:, 3] - ctr[..., 1],
            ],
            dim=-1,
        ).amin(-1)
        > 0.01
    )
    is_pos &= inside

    masked = torch.full_like(overlaps, -INF)  # (A, M): IoU only where (anchor, box) is a positive candidate pair
    cols = gt_idx.expand_as(cand)
    masked[cand[is_pos], cols[is_pos]] = overlaps[cand[is_pos], cols[is_pos]]
    best, best_gt = masked.max(dim=1)
    keep = best > -INF
    assigned[keep] = best_gt[keep]
    return assigned
