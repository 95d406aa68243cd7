"""HKH: the GFL head of HSD, teacher and student (Zhang et al., Advanced Engineering Informatics 2023,
arXiv:2307.00701; its released ``hsd_head.py``).

Per pyramid level, shared across levels: a classification tower and a regression tower, each ``stacked`` (3) blocks
of [depthwise 5x5 (no bias) -> GN(32) -> ReLU -> pointwise 1x1 (no bias) -> GN(32) -> ReLU]; then ``gfl_cls`` (3x3
conv -> num_classes sigmoid logits, bias from prior 0.01) and ``gfl_reg`` (3x3 conv -> 4 x (reg_max + 1) distribution
logits) multiplied by a learnable per-level scale. Box sides are decoded as the expectation of the softmax over the
``reg_max + 1`` bins (integral regression), in stride units.

CPU-latency options (not in the paper; the ``lite`` student of ``configs/hsd/*_lite.yaml``): ``norm="bn"`` replaces
each GroupNorm by one BatchNorm per level (the convs stay shared), which folds into the convs at export, and
``pred_kernel=1`` makes ``gfl_cls`` / ``gfl_reg`` 1x1 convs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdinspect.models.layers import DepthwiseSeparableConv, Scale

__all__ = ["HEAD_NORMS", "GFLHead", "integral"]

HEAD_NORMS = ("gn", "bn")


def integral(reg_logits: Tensor, reg_max: int) -> Tensor:
    """Expected distance of each side from its discrete distribution.

    Args:
        reg_logits: (..., 4 * (reg_max + 1)) distribution logits.
        reg_max: largest bin index.

    Returns:
        (..., 4) distances in bins (stride units), each in [0, reg_max].
    """
    prob = F.softmax(reg_logits.reshape(*reg_logits.shape[:-1], 4, reg_max + 1), dim=-1)
    project = torch.arange(reg_max + 1, dtype=prob.dtype, device=prob.device)
    return (prob * project).sum(-1)


class GFLHead(nn.Module):
    """Shared GFL head with depthwise-separable towers (HKH).

    Args:
        num_classes: number of foreground classes (sigmoid outputs, no background logit).
        in_channels: channels of every pyramid level.
        feat_channels: tower width.
        stacked: blocks per tower.
        kernel_size: depthwise kernel of the tower blocks.
        reg_max: largest distribution bin (16 in GFL/HSD: 17 bins per side).
        num_levels: pyramid levels (one learnable scale each).
        norm_groups: GroupNorm groups in the towers (``norm="gn"``).
        prior_prob: initial foreground probability of the classifier.
        norm: ``gn`` (HKH: GroupNorm, shared across levels) or ``bn`` (one BatchNorm per level, folded at export).
        pred_kernel: kernel of ``gfl_cls`` and ``gfl_reg`` (3 in HKH; 1 is cheaper).
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 256,
        feat_channels: int = 256,
        stacked: int = 3,
        kernel_size: int = 5,
        reg_max: int = 16,
        num_levels: int = 5,
        norm_groups: int = 32,
        prior_prob: float = 0.01,
        norm: str = "gn",
        pred_kernel: int = 3,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if norm not in HEAD_NORMS:
            raise ValueError(f"norm {norm!r} not in {list(HEAD_NORMS)}")
        if pred_kernel not in (1, 3):
            raise ValueError(f"pred_kernel must be 1 or 3, got {pred_kernel}")
        self.num_classes = num_classes
        self.reg_max = reg_max

        def tower() -> nn.Sequential:
            chans = [in_channels] + [feat_channels] * stacked
            return nn.Sequential(
                *(
                    DepthwiseSeparableConv(
                        chans[i],
                        chans[i + 1],
                        kernel_size,
                        norm_groups=norm_groups if norm == "gn" else 0,
                        level_bn=num_levels if norm == "bn" else 0,
                    )
                    for i in range(stacked)
                )
            )

        self.cls_convs = tower()
        self.reg_convs = tower()
        pad = pred_kernel // 2
        self.gfl_cls = nn.Conv2d(feat_channels, num_classes, pred_kernel, padding=pad)
        self.gfl_reg = nn.Conv2d(feat_channels, 4 * (reg_max + 1), pred_kernel, padding=pad)
        self.scales = nn.ModuleList(Scale(1.0) for _ in range(num_levels))
        self._init_weights(prior_prob)

    def _init_weights(self, prior_prob: float) -> None:
        # normal(std=0.01) on every conv (the released init's intent, §1.3), prior bias on the classifier
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.constant_(self.gfl_cls.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, feats: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Run the head on every level.

        Args:
            feats: pyramid levels, each (B, in_channels, H_l, W_l).

        Returns:
            cls_scores: per level (B, num_classes, H_l, W_l) logits.
            bbox_preds: per level (B, 4 * (reg_max + 1), H_l, W_l) distribution logits (scaled).
        """
        if len(feats) != len(self.scales):
            raise ValueError(f"head built for {len(self.scales)} levels, got {len(feats)}")
        cls_scores, bbox_preds = [], []
        for level, (x, scale) in enumerate(zip(feats, self.scales)):
            cls_feat = reg_feat = x
            for cls_block, reg_block in zip(self.cls_convs, self.reg_convs):
                cls_feat, reg_feat = cls_block(cls_feat, level), reg_block(reg_feat, level)
            cls_scores.append(self.gfl_cls(cls_feat))
            bbox_preds.append(scale(self.gfl_reg(reg_feat)))
        return cls_scores, bbox_preds
