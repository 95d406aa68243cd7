"""Box predictors for two-stage detectors: linear (Fast R-CNN) and cosine-similarity (TFA / DKAN "Incremental RCNN").

Both predictors expose the classifier as a submodule named ``cls_score`` and the box regressor as ``bbox_pred``, so
head surgery and logit distillation address the same module paths for either kind. Class index 0 is background
(torchvision convention); foreground class ``k`` (0-based in the dataset) is column ``k + 1``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CosineBoxPredictor", "CosineSimilarity", "LinearBoxPredictor"]


class CosineSimilarity(nn.Module):
    """Cosine similarity between L2-normalised inputs and L2-normalised class weights (no bias).

    The output is the raw cosine in [-1, 1]; the predictor applies the scale afterwards. This is the module DKAN's LKA
    taps on the student (as released: the hook sees the cosine *before* the x20 scale).

    As in TFA and MMFewShot's ``CosineSimBBoxHead``, the weight rows are re-normalised in place (without gradient) at
    every training forward; in eval mode the normalisation is functional, so inference never mutates parameters
    (the outputs are identical).

    Args:
        in_features: feature size F.
        out_features: number of classes including background, C + 1.
        eps: added to the norms.
    """

    def __init__(self, in_features: int, out_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, x: Tensor) -> Tensor:
        """x: (R, F) RoI features -> (R, C + 1) cosine similarities."""
        x = x / (x.norm(p=2, dim=1, keepdim=True) + self.eps)
        if self.training:
            with torch.no_grad():
                self.weight.div_(self.weight.norm(p=2, dim=1, keepdim=True) + self.eps)
            weight = self.weight
        else:
            weight = self.weight / (self.weight.norm(p=2, dim=1, keepdim=True) + self.eps)
        return F.linear(x, weight)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class CosineBoxPredictor(nn.Module):
    """TFA cosine classifier plus a class-specific linear box regressor.

    Args:
        in_channels: RoI feature size F (the box head's representation size).
        num_classes: number of classes including background, C + 1.
        scale: temperature on the cosine logits (20 in TFA and DKAN).
    """

    def __init__(self, in_channels: int, num_classes: int, scale: float = 20.0) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"cosine scale must be > 0, got {scale}")
        self.num_classes = num_classes
        self.scale = scale
        self.cls_score = CosineSimilarity(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, num_classes * 4)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (R, F) or (R, F, 1, 1) -> scores (R, C + 1) = scale * cos, box deltas (R, 4 (C + 1))."""
        x = x.flatten(start_dim=1)
        return self.scale * self.cls_score(x), self.bbox_pred(x)


class LinearBoxPredictor(nn.Module):
    """Plain Fast R-CNN predictor (linear classifier with bias, class-specific regressor).

    Same layout as torchvision's ``FastRCNNPredictor``, with mmdet's initialisation (cls std 0.01, reg std 0.001).

    Args:
        in_channels: RoI feature size F.
        num_classes: number of classes including background, C + 1.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, num_classes * 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (R, F) or (R, F, 1, 1) -> logits (R, C + 1), box deltas (R, 4 (C + 1))."""
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)
