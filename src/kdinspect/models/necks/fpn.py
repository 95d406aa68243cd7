"""Feature pyramid necks on torchvision's :class:`~torchvision.ops.FeaturePyramidNetwork`.

Both necks follow mmdet's ``FPN(start_level=1, num_outs=5, add_extra_convs="on_output")`` as used by GFL/HSD:
C3..C5 -> laterals (1x1) -> nearest top-down sum -> output convs -> P3..P5, then P6 = conv_s2(P5), P7 = conv_s2(P6)
with no ReLU between (``relu_before_extra_convs=False``, unlike torchvision's ``LastLevelP6P7``). Every conv is
Xavier-uniform initialised with zero bias (mmdet FPN init).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock

__all__ = ["FPN", "ExtraLevels", "xavier_init"]


def xavier_init(module: nn.Module) -> None:
    """Xavier-uniform weights and zero bias on every ``Conv2d`` of ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ExtraLevels(ExtraFPNBlock):
    """Extra pyramid levels computed from the last *output* level: ``P_{k+1} = conv(P_k)``.

    Args:
        num_extra: number of extra levels (2 for P6, P7).
        make_conv: ``make_conv(stride) -> nn.Module`` building one stride-2 conv (channels fixed by the caller).
        relu_before: apply ReLU before every extra conv after the first (mmdet ``relu_before_extra_convs``).
    """

    def __init__(self, num_extra: int, make_conv: Callable[[int], nn.Module], relu_before: bool = False) -> None:
        super().__init__()
        self.convs = nn.ModuleList(make_conv(2) for _ in range(num_extra))
        self.relu_before = relu_before

    def forward(self, p: list[Tensor], c: list[Tensor], names: list[str]) -> tuple[list[Tensor], list[str]]:
        x = p[-1]
        for i, conv in enumerate(self.convs):
            x = conv(x.relu() if (self.relu_before and i > 0) else x)
            p.append(x)
            names.append(f"extra{i}")
        return p, names


class FPN(FeaturePyramidNetwork):
    """The HSD teacher neck: FPN with 3x3 output convs and two stride-2 3x3 extra levels.

    Args:
        in_channels: channels of the used backbone levels, high to low resolution (e.g. C3..C5 = [128, 256, 512]).
        out_channels: channels of every output level.
        num_extra: extra stride-2 levels on top of the last output (2 -> P6, P7).
        in_strides: strides of the used backbone levels (sets :attr:`strides`).

    Attributes:
        strides: output strides, e.g. [8, 16, 32, 64, 128].
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int = 256,
        num_extra: int = 2,
        in_strides: Sequence[int] = (8, 16, 32),
    ) -> None:
        super().__init__(
            list(in_channels), out_channels, extra_blocks=ExtraLevels(num_extra, self._extra_conv_factory(out_channels))
        )
        self.out_channels = out_channels
        self.strides = [*in_strides, *(in_strides[-1] * 2 ** (i + 1) for i in range(num_extra))]
        xavier_init(self)

    @staticmethod
    def _extra_conv_factory(channels: int) -> Callable[[int], nn.Module]:
        return lambda stride: nn.Conv2d(channels, channels, 3, stride, 1)

    def forward(self, feats: list[Tensor]) -> list[Tensor]:  # type: ignore[override]
        """feats: backbone levels high to low resolution -> list of (B, out_channels, H_l, W_l), P3 first."""
        out = super().forward(OrderedDict((str(i), f) for i, f in enumerate(feats)))
        return list(out.values())
