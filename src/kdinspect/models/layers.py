"""Small reusable layers."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["DepthwiseSeparableConv", "Scale"]


class DepthwiseSeparableConv(nn.Module):
    """Depthwise k x k conv followed by a pointwise 1x1 conv (mmcv ``DepthwiseSeparableConvModule``).

    Without a norm both convs have a bias and there is no norm or activation (HKN output convs). With ``norm_groups``
    each conv is bias-free and followed by ``GroupNorm(norm_groups)`` and ReLU (HKH towers). With ``level_bn`` each
    conv is bias-free and followed by one of ``level_bn`` BatchNorms (one per pyramid level: the convs are shared
    across levels, the statistics are not, as in EfficientDet's head) and ReLU; in eval mode a BatchNorm folds into
    the conv before it, so the exported graph holds convs and ReLUs only.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: depthwise kernel size (odd; "same" padding).
        stride: depthwise stride.
        norm_groups: GroupNorm groups; 0 = no GroupNorm.
        level_bn: pyramid levels with their own BatchNorm; 0 = no BatchNorm. Exclusive with ``norm_groups``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        norm_groups: int = 0,
        level_bn: int = 0,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if norm_groups and level_bn:
            raise ValueError("norm_groups and level_bn are exclusive: GroupNorm or per-level BatchNorm, not both")
        bias = not (norm_groups or level_bn)
        pad = kernel_size // 2
        self.depthwise_conv = nn.Conv2d(
            in_channels, in_channels, kernel_size, stride, pad, groups=in_channels, bias=bias
        )
        self.pointwise_conv = nn.Conv2d(in_channels, out_channels, 1, bias=bias)
        self.dw_norm: nn.Module = nn.Identity()
        self.pw_norm: nn.Module = nn.Identity()
        self.act: nn.Module = nn.Identity()
        self.per_level = bool(level_bn)
        if norm_groups:
            self.dw_norm = nn.GroupNorm(norm_groups, in_channels)
            self.pw_norm = nn.GroupNorm(norm_groups, out_channels)
        if level_bn:
            self.dw_norms = nn.ModuleList(nn.BatchNorm2d(in_channels) for _ in range(level_bn))
            self.pw_norms = nn.ModuleList(nn.BatchNorm2d(out_channels) for _ in range(level_bn))
        if norm_groups or level_bn:
            self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, level: int = 0) -> Tensor:
        """x: (B, in_channels, H, W) -> (B, out_channels, H', W'); ``level`` picks the per-level BatchNorm."""
        if self.per_level:
            x = self.act(self.dw_norms[level](self.depthwise_conv(x)))
            return self.act(self.pw_norms[level](self.pointwise_conv(x)))
        x = self.act(self.dw_norm(self.depthwise_conv(x)))
        return self.act(self.pw_norm(self.pointwise_conv(x)))


class Scale(nn.Module):
    """A learnable scalar multiplier (one per pyramid level in GFL heads)."""

    def __init__(self, init: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(Tensor([init]))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale
