"""Layers of MCFF-L Net with the Keras semantics of the released TensorFlow code.

Every convolution is bias-free (``use_bias=False`` in the released builder). Keras ``"same"`` padding for stride-1
convolutions with odd (effective) kernels is symmetric, so it maps onto PyTorch ``padding=((kh-1)*dh//2, ...)``.
The two stride-2 layers are not symmetric in Keras and get exact equivalents here (:class:`Stride2Conv`,
:class:`Upsample2xConvT`) instead of the usual ``padding=1`` approximation, which shifts the sampling grid by one pixel.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = [
    "ConvSum",
    "ResidualBlock",
    "Stride2Conv",
    "Upsample2xConvT",
    "conv",
    "norm_layer",
]

NORMS = ("instance", "batch")


def conv(in_ch: int, out_ch: int, kernel: int | tuple[int, int], dilation: int = 1) -> nn.Conv2d:
    """Bias-free stride-1 convolution with Keras ``"same"`` padding (odd kernels only).

    The released ``pad 3 -> 3x3 conv, dilation 3, "valid"`` is the same operation as this with ``padding=3``.
    """
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"conv: Keras-'same' equivalence needs odd kernels, got {(kh, kw)}")
    padding = ((kh - 1) * dilation // 2, (kw - 1) * dilation // 2)
    return nn.Conv2d(in_ch, out_ch, (kh, kw), padding=padding, dilation=dilation, bias=False)


def norm_layer(kind: str, channels: int) -> nn.Module:
    """Normalisation with the Keras/tfa defaults.

    Args:
        kind: ``instance`` = tfa ``InstanceNormalization`` (affine, eps 1e-3, no running statistics);
            ``batch`` = Keras ``BatchNormalization`` (momentum 0.99 -> PyTorch 0.01, eps 1e-3).
    """
    if kind == "instance":
        return nn.InstanceNorm2d(channels, eps=1e-3, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)
    raise ValueError(f"norm {kind!r} not in {list(NORMS)}")


class Stride2Conv(nn.Module):
    """Keras ``Conv2D(k=3, strides=2, padding="same")`` on even sizes: zero pad 0 top/left, 1 bottom/right.

    Shapes: (B, C_in, H, W) -> (B, C_out, H/2, W/2) for even H, W.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.conv = nn.Conv2d(in_ch, out_ch, 3, stride=2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pad(x))


class Upsample2xConvT(nn.Module):
    """Keras ``Conv2DTranspose(k=3, strides=2, padding="same")``: full transposed conv, then drop the last row/column.

    Input pixel i scatters to output pixels 2i..2i+2, as in TensorFlow (``padding=1, output_padding=1`` in PyTorch
    would scatter to 2i-1..2i+1). Shapes: (B, C_in, H, W) -> (B, C_out, 2H, 2W).
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)[..., :-1, :-1]  # (B, C, 2H+1, 2W+1) -> (B, C, 2H, 2W)


class ConvSum(nn.Module):
    """Sum of parallel branches (each an ``nn.Sequential``): the rectangular path's ``(A) + (B)`` pattern."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: Tensor) -> Tensor:
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out


def _res_conv(channels: int, depthwise: bool) -> nn.Module:
    if not depthwise:  # MCL: pad 1 -> 3x3 "valid"
        return conv(channels, channels, 3)
    # MCLD: pad 1 -> depthwise 3x3 "valid" -> pointwise 1x1
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
        nn.Conv2d(channels, channels, 1, bias=False),
    )


class ResidualBlock(nn.Module):
    """CycleGAN-style residual block: conv -> norm -> ReLU -> conv -> norm, plus the identity, no activation after.

    Args:
        channels: width C (input = output).
        norm: ``instance`` or ``batch`` (see :func:`norm_layer`).
        depthwise: the MCLD variant (depthwise 3x3 + pointwise 1x1 instead of each 3x3).

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, norm: str = "instance", depthwise: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _res_conv(channels, depthwise),
            norm_layer(norm, channels),
            nn.ReLU(inplace=True),
            _res_conv(channels, depthwise),
            norm_layer(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)
