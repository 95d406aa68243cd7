"""The three encoder-decoder paths of MCFF-L Net: Standard (h), Dilated (x) and Rectangular (y).

Each path is an ``nn.Sequential`` with named stages ``stem``, ``down``, ``blocks``, ``up`` and ``head`` (useful as
``FeatureTaps`` names, e.g. ``paths.h.blocks``). Resolution: stem at full size, two down-samplings to 1/4 where the
residual blocks run at width 4d, two 2x up-samplings back to full size at width d, then a head to ``out_ch`` logits.

Layer order follows ``ResnetGenerator_with_ThreeChannel`` of the released code (see ``docs/mcff.md``).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from kdinspect.models.mcff.blocks import ConvSum, ResidualBlock, Stride2Conv, Upsample2xConvT, conv, norm_layer

__all__ = ["PATHS", "dilated_path", "rectangular_path", "standard_path"]


def _rect_pair(in_ch: int, out_ch: int, long: tuple[int, int], short: tuple[int, int]) -> nn.Module:
    """(kh x kw -> short) + (kw x kh -> transposed short): the two orthogonal rectangular branches, summed."""
    return ConvSum(
        nn.Sequential(conv(in_ch, out_ch, long), conv(out_ch, out_ch, short)),
        nn.Sequential(conv(in_ch, out_ch, long[::-1]), conv(out_ch, out_ch, short[::-1])),
    )


def _stage(*layers: nn.Module) -> nn.Sequential:
    return nn.Sequential(*layers)


def _decoder(dim: int, n_down: int, norm: str, dropout: float) -> nn.Sequential:
    """[Dropout] -> 3x3 transposed conv stride 2 -> norm -> ReLU, width halving each time (4d -> 2d -> d)."""
    stages = []
    ch = dim * 2**n_down
    for _ in range(n_down):
        drop = [nn.Dropout(dropout)] if dropout > 0 else []
        stages.append(_stage(*drop, Upsample2xConvT(ch, ch // 2), norm_layer(norm, ch // 2), nn.ReLU(inplace=True)))
        ch //= 2
    return nn.Sequential(*stages)


def _assemble(
    stem: nn.Module,
    downs: list[nn.Module],
    dim: int,
    n_down: int,
    n_blocks: int,
    norm: str,
    up_norm: str,
    dropout: float,
    depthwise: bool,
    head: nn.Module,
) -> nn.Sequential:
    width = dim * 2**n_down
    return nn.Sequential(OrderedDict(
        stem=stem,
        down=nn.Sequential(*downs),
        blocks=nn.Sequential(*[ResidualBlock(width, norm, depthwise) for _ in range(n_blocks)]),
        up=_decoder(dim, n_down, up_norm, dropout),
        head=head,
    ))  # fmt: skip


def standard_path(
    dim: int,
    n_blocks: int,
    out_ch: int,
    n_down: int = 2,
    norm: str = "instance",
    dropout: float = 0.0,
    depthwise: bool = False,
    in_ch: int = 3,
) -> nn.Sequential:
    """Standard path h: stem 3x3 dil-2 -> 7x7; down = 3x3 dil-2 -> 3x3 stride 2; head 7x7.

    Shapes: (B, in_ch, H, W) -> (B, out_ch, H, W), H and W multiples of ``2**n_down``.
    """
    stem = _stage(conv(in_ch, dim, 3, dilation=2), conv(dim, dim, 7), norm_layer(norm, dim), nn.ReLU(inplace=True))
    downs = []
    for i in range(n_down):
        c_in, c_out = dim * 2**i, dim * 2 ** (i + 1)
        downs.append(
            _stage(
                conv(c_in, c_out, 3, dilation=2),
                Stride2Conv(c_out, c_out),
                norm_layer(norm, c_out),
                nn.ReLU(inplace=True),
            )
        )
    head = conv(dim, out_ch, 7)
    return _assemble(stem, downs, dim, n_down, n_blocks, norm, norm, dropout, depthwise, head)


def dilated_path(
    dim: int,
    n_blocks: int,
    out_ch: int,
    n_down: int = 2,
    norm: str = "instance",
    dropout: float = 0.0,
    depthwise: bool = False,
    in_ch: int = 3,
) -> nn.Sequential:
    """Dilated path x: stem 3x3 dil-3 -> 3x3 dil-2; down = 3x3 dil-3 -> 3x3 dil-2 -> max-pool 2; head as stem.

    Quirk kept from the released code: the decoder norm is always BatchNorm, whatever ``norm`` is.
    """
    stem = _stage(
        conv(in_ch, dim, 3, dilation=3), conv(dim, dim, 3, dilation=2), norm_layer(norm, dim), nn.ReLU(inplace=True)
    )
    downs = []
    for i in range(n_down):
        c_in, c_out = dim * 2**i, dim * 2 ** (i + 1)
        downs.append(
            _stage(
                conv(c_in, c_out, 3, dilation=3),
                conv(c_out, c_out, 3, dilation=2),
                nn.MaxPool2d(2),
                norm_layer(norm, c_out),
                nn.ReLU(inplace=True),
            )
        )
    head = _stage(conv(dim, out_ch, 3, dilation=3), conv(out_ch, out_ch, 3, dilation=2))
    return _assemble(stem, downs, dim, n_down, n_blocks, norm, "batch", dropout, depthwise, head)


def rectangular_path(
    dim: int,
    n_blocks: int,
    out_ch: int,
    n_down: int = 2,
    norm: str = "instance",
    dropout: float = 0.0,
    depthwise: bool = False,
    in_ch: int = 3,
) -> nn.Sequential:
    """Rectangular path y: stem (7x3 -> 3x1) + (3x7 -> 1x3) -> 7x7; down = (3x1 -> 3x1) + (1x3 -> 1x3) -> max-pool 2;
    head (7x3 -> 3x1) + (3x7 -> 1x3) -> 7x7."""
    stem = _stage(
        _rect_pair(in_ch, dim, (7, 3), (3, 1)), conv(dim, dim, 7), norm_layer(norm, dim), nn.ReLU(inplace=True)
    )
    downs = []
    for i in range(n_down):
        c_in, c_out = dim * 2**i, dim * 2 ** (i + 1)
        downs.append(
            _stage(
                _rect_pair(c_in, c_out, (3, 1), (3, 1)), nn.MaxPool2d(2), norm_layer(norm, c_out), nn.ReLU(inplace=True)
            )
        )
    head = _stage(_rect_pair(dim, out_ch, (7, 3), (3, 1)), conv(out_ch, out_ch, 7))
    return _assemble(stem, downs, dim, n_down, n_blocks, norm, norm, dropout, depthwise, head)


PATHS = {"h": standard_path, "x": dilated_path, "y": rectangular_path}
