"""Ground-truth preparation for MCFF-L training: mask stacking, the dilation switch and temperature softening."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from kdinspect.data.structures import SegTarget
from kdinspect.losses.segmentation import MAP_LOSSES, two_channel

__all__ = ["GT_DILATIONS", "check_gt_options", "dilate_mask", "gt_two_channel", "soften", "stack_masks"]

GT_DILATIONS = ("released", "3x3", "none")


def dilate_mask(mask: Tensor, mode: str = "released", iterations: int = 3) -> Tensor:
    """Binary dilation of a ground-truth mask, as in the released data loader or as intended.

    ``released``: the loader calls ``cv2.dilate(mask, kernel=(3, 3), iterations=3)``. OpenCV turns the tuple into a
    2x1 structuring element anchored on its lower cell, so each iteration sets ``out[y] = max(m[y-1], m[y])``: every
    crack pixel grows ``iterations`` pixels *downward only*. ``3x3``: a full 3x3 square per iteration (grows in every
    direction). ``none``: unchanged.

    Args:
        mask: (B, 1, H, W) float in {0, 1}.
        mode: ``released`` | ``3x3`` | ``none``.
        iterations: number of dilation steps.

    Returns:
        (B, 1, H, W) dilated mask.
    """
    if mode not in GT_DILATIONS:
        raise ValueError(f"gt_dilation {mode!r} not in {list(GT_DILATIONS)}")
    for _ in range(iterations if mode != "none" else 0):
        if mode == "released":
            mask = F.max_pool2d(F.pad(mask, (0, 0, 1, 0)), kernel_size=(2, 1), stride=1)  # out[y] = max(m[y-1], m[y])
        else:
            mask = F.max_pool2d(mask, kernel_size=3, stride=1, padding=1)
    return mask


def soften(target: Tensor, temperature: float) -> Tensor:
    """The released T0 option: ``softmax(target / T0)`` over the two channels; ``T0 = 0`` leaves it unchanged.

    Args:
        target: (B, 2, H, W) one-hot (or probability) target.
    """
    if temperature <= 0:
        return target
    return torch.softmax(target / temperature, dim=1)


def stack_masks(targets: Sequence[SegTarget | None], size: tuple[int, int], device: torch.device) -> Tensor:
    """Stack per-image masks into (B, 1, H, W), zero-padding each at the bottom/right to ``size`` (like the images).

    Raises:
        ValueError: a target is missing (unlabelled image in a training batch) or larger than ``size``.
    """
    out = torch.zeros(len(targets), 1, *size, device=device)
    for i, t in enumerate(targets):
        if t is None:
            raise ValueError(f"MCFF training needs a mask for every image; batch item {i} has none")
        h, w = t.mask.shape[-2:]
        if h > size[0] or w > size[1]:
            raise ValueError(f"batch item {i}: mask {(h, w)} is larger than the image batch {size}")
        out[i, 0, :h, :w] = t.mask.to(device=device, dtype=out.dtype)
    return out


def gt_two_channel(
    targets: Sequence[SegTarget | None], size: tuple[int, int], device: torch.device, mode: str, iterations: int
) -> Tensor:
    """(B, 2, H, W) one-hot ground truth ``[crack, background]`` after dilation ``mode`` (:func:`dilate_mask`)."""
    return two_channel(dilate_mask(stack_masks(targets, size, device), mode, iterations))


def check_gt_options(loss: str, gt_dilation: str) -> None:
    """Raise ``ValueError`` for an unknown loss or ground-truth dilation name (listing the valid ones)."""
    if loss not in MAP_LOSSES:
        raise ValueError(f"loss {loss!r} not in {list(MAP_LOSSES)}")
    if gt_dilation not in GT_DILATIONS:
        raise ValueError(f"gt_dilation {gt_dilation!r} not in {list(GT_DILATIONS)}")
