"""MCFF-L Net: three parallel encoder-decoder paths fused by summing their logits, with attention gating.

Teacher: width 64, 8 residual blocks per path, dropout 0.5 (32,889,152 parameters). Student: width 16, 4 blocks, no
dropout (1,179,392 trainable parameters + 96 BatchNorm running statistics). MCLD: the student with depthwise-separable
residual convolutions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdinspect.data.structures import SegTarget
from kdinspect.losses.segmentation import compute_map_loss
from kdinspect.models.mcff.paths import PATHS
from kdinspect.models.mcff.targets import check_gt_options, gt_two_channel

__all__ = ["OUTPUTS", "MCFFLogits", "MCFFNet", "MCFFOutput", "gate"]

OUTPUTS = ("h", "x", "y", "mix")


class MCFFLogits(NamedTuple):
    """Gated two-channel logits of every output, each (B, 2, H, W); channel 0 = crack, 1 = background."""

    h: Tensor
    x: Tensor
    y: Tensor
    mix: Tensor


class MCFFOutput(NamedTuple):
    """Eval-mode output. prob: (B, 1, H, W) crack probability of the mix output at the inference temperature."""

    prob: Tensor


def gate(logits: Tensor) -> Tensor:
    """Attention gating: ``logits[:, 1:3] * sigmoid(logits[:, 0])``. (B, 3, H, W) -> (B, 2, H, W)."""
    return logits[:, 1:] * torch.sigmoid(logits[:, :1])


class MCFFNet(nn.Module):
    """MCFF-L Net (``ResnetGenerator_with_ThreeChannel`` of the released code).

    Input: RGB in [0, 1]; inside, it is converted to the released BGR ``x * 2 - 1``. Sizes that are not multiples of
    4 are zero-padded at the bottom/right and the outputs cropped back.

    Args:
        num_classes: must be 1 (crack); kept for the ``MODELS`` builder signature.
        width: base width d (64 teacher, 16 student).
        n_blocks: residual blocks per path (8 teacher, 4 student).
        n_down: number of 2x down-samplings (2 in the paper).
        dropout: dropout before each decoder up-convolution (0.5 teacher, 0 student).
        depthwise: MCLD variant (depthwise 3x3 + pointwise 1x1 in the residual blocks).
        attention: a third output channel gates the other two (on for both released nets).
        infer_temperature: T of the deployed output ``softmax(mix / T)`` (T2 for the student, 1 for the teacher).
        space_to_depth: s > 1 runs every path at 1/s resolution: the image enters as s x s pixel blocks stacked into
            channels (``PixelUnshuffle``, 3 s^2 channels, no pixel discarded); each path's head keeps width d and a
            1x1 convolution of its features concatenated with those input pixels (a skip that carries the pixel
            values to the output) predicts s^2 logits per output channel, which ``PixelShuffle`` puts back at full
            resolution. The lite variant (not in the paper); 1 = the paper's network.
        loss: ground-truth loss per output: ``asymmetric`` (released), ``kl`` or ``bce_dice``.
        alpha: crack-channel scale of the asymmetric loss.
        gt_dilation: ``released`` (2x1 kernel: grows cracks downward), ``3x3`` or ``none``.
        gt_dilation_iters: dilation iterations (3 in the released loader).
    """

    def __init__(
        self,
        num_classes: int = 1,
        width: int = 64,
        n_blocks: int = 8,
        n_down: int = 2,
        dropout: float = 0.5,
        depthwise: bool = False,
        attention: bool = True,
        infer_temperature: float = 1.0,
        space_to_depth: int = 1,
        loss: str = "asymmetric",
        alpha: float = 200.0,
        gt_dilation: str = "released",
        gt_dilation_iters: int = 3,
    ) -> None:
        super().__init__()
        if num_classes != 1:
            raise ValueError(f"MCFF-L Net segments one class (crack); got num_classes={num_classes}")
        check_gt_options(loss, gt_dilation)
        if infer_temperature <= 0:
            raise ValueError(f"infer_temperature must be > 0, got {infer_temperature}")
        if space_to_depth < 1:
            raise ValueError(f"space_to_depth must be >= 1, got {space_to_depth}")
        out_ch = 3 if attention else 2
        s2 = space_to_depth**2
        kw = {
            "dim": width,
            "n_blocks": n_blocks,
            "out_ch": out_ch if space_to_depth == 1 else width,
            "in_ch": 3 * s2,
            "n_down": n_down,
            "dropout": dropout,
            "depthwise": depthwise,
        }
        self.paths = nn.ModuleDict({name: build(**kw) for name, build in PATHS.items()})
        self.space_to_depth = space_to_depth
        if space_to_depth > 1:  # per path, a 1x1 conv of [head features, input pixels] makes the s^2 sub-pixels
            self.unshuffle = nn.PixelUnshuffle(space_to_depth)
            self.to_pixels = nn.ModuleDict(
                {
                    name: nn.Sequential(nn.Conv2d(width + 3 * s2, out_ch * s2, 1), nn.PixelShuffle(space_to_depth))
                    for name in PATHS
                }
            )
        else:
            self.to_pixels = nn.ModuleDict()
        self.attention = attention
        self.multiple = 2**n_down * space_to_depth
        self.infer_temperature = infer_temperature
        self.loss_kind = loss
        self.alpha = alpha
        self.gt_dilation = gt_dilation
        self.gt_dilation_iters = gt_dilation_iters

    def _normalize(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """RGB [0, 1] (B, 3, H, W) -> BGR [-1, 1], zero-padded (before normalisation) to a multiple of
        ``2**n_down * space_to_depth`` (4 for the paper's network)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"MCFFNet expects (B, 3, H, W) RGB images, got shape {tuple(images.shape)}")
        h, w = images.shape[-2:]
        ph, pw = -h % self.multiple, -w % self.multiple
        if ph or pw:
            images = F.pad(images, (0, pw, 0, ph))
        bgr = images[:, [2, 1, 0]]
        return bgr * 2.0 - 1.0, (h, w)

    def _path_outputs(self, images: Tensor) -> tuple[dict[str, Tensor], tuple[int, int]]:
        """Each path's output before any pixel shuffle, and the original size: (B, 3, H', W') logits for the paper's
        network (2 channels without attention); with ``space_to_depth`` s > 1 the (B, 3 s^2, H'/s, W'/s) sub-pixel
        logits of the 1x1 convolution over [head features, unshuffled input]."""
        x, size = self._normalize(images)
        if self.space_to_depth == 1:
            return {name: path(x) for name, path in self.paths.items()}, size
        x = self.unshuffle(x)
        return {name: self.to_pixels[name][0](torch.cat([path(x), x], 1)) for name, path in self.paths.items()}, size

    def raw_logits(self, images: Tensor) -> tuple[dict[str, Tensor], tuple[int, int]]:
        """Ungated head outputs of the three paths and the original size. Each (B, 3, H', W') (2 without attention),
        at full (padded) resolution whatever ``space_to_depth`` is."""
        out, size = self._path_outputs(images)
        if self.space_to_depth > 1:
            out = {name: self.to_pixels[name][1](v) for name, v in out.items()}  # PixelShuffle
        return out, size

    def forward_logits(self, images: Tensor) -> MCFFLogits:
        """Gated logits of h, x, y and mix (= h + x + y, summed before gating). images: (B, 3, H, W) RGB [0, 1]."""
        raw, (h, w) = self.raw_logits(images)
        raw["mix"] = raw["h"] + raw["x"] + raw["y"]
        out = {k: (gate(v) if self.attention else v)[..., :h, :w] for k, v in raw.items()}
        return MCFFLogits(**out)

    def predict_prob(self, images: Tensor) -> Tensor:
        """Deployed output: crack channel of ``softmax(gate(h + x + y) / T)``, (B, 1, H, W).

        Computed as ``sigmoid((l_crack - l_background) / T)`` (the same value for two channels). With
        ``space_to_depth`` s > 1 the paths' sub-pixel logits are summed, gated and turned into probabilities at 1/s
        resolution (all per-pixel steps) and only the crack probability is shuffled to full resolution."""
        out, (h, w) = self._path_outputs(images)
        mix = sum(out.values())
        s = self.space_to_depth
        if s == 1:
            return self._crack_prob(mix, 1).unsqueeze(1)[..., :h, :w]
        b, _, hs, ws = mix.shape
        crack = self._crack_prob(mix.view(b, -1, s * s, hs, ws), 1)  # (B, s^2, H/s, W/s)
        return F.pixel_shuffle(crack, s)[..., :h, :w]

    def _crack_prob(self, mix: Tensor, dim: int) -> Tensor:
        """Crack probability from summed logits with the output channels on ``dim`` (3 with attention, else 2);
        ``dim`` is removed."""
        logit = mix.select(dim, -2) - mix.select(dim, -1)
        if self.attention:
            logit = logit * torch.sigmoid(mix.select(dim, 0))
        return torch.sigmoid(logit / self.infer_temperature)

    def gt_target(self, targets: Sequence[SegTarget | None], size: tuple[int, int], device: torch.device) -> Tensor:
        """(B, 2, H, W) one-hot ground truth ``[crack, background]`` after the configured dilation."""
        return gt_two_channel(targets, size, device, self.gt_dilation, self.gt_dilation_iters)

    def compute_loss(self, logits: MCFFLogits, targets: Sequence[SegTarget | None]) -> dict[str, Tensor]:
        """Ground-truth loss of every output (weight 1 each, summed by the task): ``loss_h``, ..., ``loss_mix``."""
        gt = self.gt_target(targets, tuple(logits.mix.shape[-2:]), logits.mix.device)
        return {
            f"loss_{k}": compute_map_loss(self.loss_kind, v, gt, 1.0, self.alpha) for k, v in logits._asdict().items()
        }

    def forward(
        self, images: Tensor, targets: Sequence[SegTarget | None] | None = None
    ) -> dict[str, Tensor] | MCFFOutput:
        """Train mode with targets: dict of losses. Otherwise: :class:`MCFFOutput` with ``prob`` (B, 1, H, W)."""
        if self.training and targets is not None:
            return self.compute_loss(self.forward_logits(images), targets)
        return MCFFOutput(self.predict_prob(images))

    def inference_module(self, nms: bool = True) -> nn.Module:
        """Export wrapper: ``images`` (B, 3, H, W) RGB [0, 1] -> ``MCFFOutput(prob)``. ``nms`` is ignored."""
        return MCFFInference(self)


class MCFFInference(nn.Module):
    """Keeps only the deployed mix output (the released "keep only Label_mix_for_real" step)."""

    def __init__(self, net: MCFFNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: Tensor) -> MCFFOutput:
        return MCFFOutput(self.net.predict_prob(images))
