"""Small reusable layers."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["DepthwiseSeparableConv", "Scale"]


class DepthwiseSeparableConv(nn.Module):
    """Depthwise k x k conv followed by a pointwise 1x1 conv (mmcv ``DepthwiseSeparableConvModule``).

    Without ``norm_groups`` both convs have a bias and there is no norm or activation (HKN output convs). With
    ``norm_groups`` each conv is bias-free and followed by ``GroupNorm(norm_groups)`` and ReLU (HKH towers).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: depthwise kernel size (odd; "same" padding).
        stride: depthwise stride.
        norm_groups: GroupNorm groups; 0 = no norm and no activation.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, norm_groups: int = 0
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        bias = norm_groups == 0
        pad = kernel_size // 2
        self.depthwise_conv = nn.Conv2d(
            in_channels, in_channels, kernel_size, stride, pad, groups=in_channels, bias=bias
        )
        self.pointwise_conv = nn.Conv2d(in_channels, out_channels, 1, bias=bias)
        if norm_groups:
            self.dw_norm: nn.Module = nn.GroupNorm(norm_groups, in_channels)
            self.pw_norm: nn.Module = nn.GroupNorm(norm_groups, out_channels)
            self.act: nn.Module = nn.ReLU(inplace=True)
        else:
            self.dw_norm = self.pw_norm = self.act = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.dw_norm(self.depthwise_conv(x)))
        return self.act(self.pw_norm(self.pointwise_conv(x)))


class Scale(nn.Module):
    """A learnable scalar multiplier (one per pyramid level in GFL heads)."""

    def __init__(self, init: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(Tensor([init]))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale
