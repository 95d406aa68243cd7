"""HKN, the Heterogeneous Knowledge Neck of the HSD student (Zhang et al., Advanced Engineering Informatics
2023, arXiv:2307.00701; its released ``hkn.py``).

HKN keeps the FPN wiring (C3..C5 laterals 1x1 with bias, nearest top-down sum, P6/P7 from the last output with no
ReLU) but its output and extra convs are depthwise-separable 7x7 convs (depthwise 7x7 + pointwise 1x1, both with bias,
no norm, no activation; the extra ones with stride 2). It also owns one Coordinate Attention block per lateral level.

``ca_mode`` (the released code and the paper disagree):

- ``released_noop``: the released forward computes CA from the laterals but never uses the result, so the blocks hold
  parameters and change nothing. This mode keeps the parameters and skips the computation.
- ``apply_on_laterals``: the paper's intent: ``lateral_l <- CA(lateral_l)`` before the top-down fusion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdinspect.models.layers import DepthwiseSeparableConv
from kdinspect.models.necks.fpn import FPN, xavier_init

__all__ = ["CA_MODES", "HKN", "CoordAtt"]

CA_MODES = ("released_noop", "apply_on_laterals")


class CoordAtt(nn.Module):
    """Coordinate attention (Hou et al. 2021): pool along H and along W, shared 1x1 conv + BN + h-swish, then two
    1x1 convs and sigmoids give per-row and per-column gates; ``out = x * a_h * a_w``.

    Args:
        channels: input/output channels.
        reduction: mip = max(8, channels // reduction).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        mip = max(8, channels // reduction)
        self.conv1 = nn.Conv2d(channels, mip, 1)
        self.bn1 = nn.BatchNorm2d(mip)
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(mip, channels, 1)
        self.conv_w = nn.Conv2d(mip, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        h, w = x.shape[-2:]
        x_h = x.mean(dim=3, keepdim=True)  # (B, C, H, 1)
        x_w = x.mean(dim=2, keepdim=True).transpose(2, 3)  # (B, C, W, 1)
        y = self.act(self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2))))  # (B, mip, H + W, 1)
        y_h, y_w = torch.split(y, [h, w], dim=2)
        a_h = self.conv_h(y_h).sigmoid()  # (B, C, H, 1)
        a_w = self.conv_w(y_w.transpose(2, 3)).sigmoid()  # (B, C, 1, W)
        return x * a_h * a_w


class HKN(FPN):
    """Heterogeneous Knowledge Neck.

    Args:
        in_channels: channels of C3..C5.
        out_channels: channels of every output level (256 in the paper).
        num_extra: extra stride-2 levels (2 -> P6, P7).
        in_strides: strides of the used backbone levels.
        ca_mode: ``released_noop`` or ``apply_on_laterals`` (see the module docstring).
        kernel_size: depthwise kernel of the output and extra convs (7 in the paper).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int = 256,
        num_extra: int = 2,
        in_strides: Sequence[int] = (8, 16, 32),
        ca_mode: str = "released_noop",
        kernel_size: int = 7,
    ) -> None:
        if ca_mode not in CA_MODES:
            raise ValueError(f"ca_mode {ca_mode!r} not in {list(CA_MODES)}")
        self._kernel_size = kernel_size
        super().__init__(in_channels, out_channels, num_extra, in_strides)
        self.layer_blocks = nn.ModuleList(
            DepthwiseSeparableConv(out_channels, out_channels, kernel_size) for _ in in_channels
        )
        self.coord_att = nn.ModuleList(CoordAtt(out_channels) for _ in in_channels)
        self.ca_mode = ca_mode
        xavier_init(self)

    def _extra_conv_factory(self, channels: int) -> Callable[[int], nn.Module]:  # type: ignore[override]
        k = self._kernel_size
        return lambda stride: DepthwiseSeparableConv(channels, channels, k, stride)

    def forward(self, feats: list[Tensor]) -> list[Tensor]:  # type: ignore[override]
        """feats: C3..C5 -> [P3, ..., P7], each (B, out_channels, H_l, W_l)."""
        laterals = [block(f) for block, f in zip(self.inner_blocks, feats)]
        if self.ca_mode == "apply_on_laterals":
            laterals = [ca(lat) for ca, lat in zip(self.coord_att, laterals)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest"
            )
        outs = [block(lat) for block, lat in zip(self.layer_blocks, laterals)]
        outs, _ = self.extra_blocks(outs, feats, [str(i) for i in range(len(outs))])
        return outs
