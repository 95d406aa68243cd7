"""Class-incremental fine-tuning helpers: head surgery, freeze policies, teacher/student construction.

Class layout inside the box predictors is torchvision's: column 0 is background, then the old (base) classes, then
the new (novel) classes. Widening therefore appends rows and leaves every old row (background included) untouched,
which is what makes "the first C_base foreground logits are the base classes" hold for LKA.
"""

from __future__ import annotations

import copy
import fnmatch
import logging
from collections.abc import Sequence

import torch
from torch import nn

from kdinspect.models.faster_rcnn import FasterRCNN
from kdinspect.models.heads.cosine_head import CosineBoxPredictor, LinearBoxPredictor

__all__ = [
    "FREEZE_POLICIES",
    "apply_freeze",
    "build_incremental_pair",
    "expand_classes",
    "to_cosine_predictor",
    "widen_detector",
]

logger = logging.getLogger(__name__)

# Parameter-name patterns (fnmatch over named_parameters()) frozen by each policy.
FREEZE_POLICIES: dict[str, tuple[str, ...]] = {
    # DKAN student (released config): backbone.frozen_stages = 4; neck, RPN and the whole RoI head train.
    "dkan": ("backbone.*",),
    # TFA (MMFewShot tfa configs): only the last layer (cosine classifier + box regressor) trains.
    "tfa": ("backbone.*", "neck.*", "rpn.*", "roi_heads.box_head.*"),
    # Nothing frozen beyond what the backbone itself freezes (base training).
    "none": (),
}


def _widen_linear(
    old: nn.Linear | None,
    old_weight: torch.Tensor,
    new_rows: int,
    keep_rows: int,
    std: float,
    g: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """New (new_rows, F) weight with the first ``keep_rows`` rows copied and the rest ~ N(0, std); bias zero-padded."""
    weight = torch.randn(new_rows, old_weight.shape[1], generator=g, dtype=old_weight.dtype) * std
    weight[:keep_rows] = old_weight[:keep_rows]
    bias = None
    if old is not None and old.bias is not None:
        bias = torch.zeros(new_rows, dtype=old.bias.dtype)
        bias[:keep_rows] = old.bias.detach()[:keep_rows]
    return weight, bias


@torch.no_grad()
def expand_classes(
    predictor: nn.Module, new_num_classes: int, init_std: float = 0.01, generator: torch.Generator | None = None
) -> nn.Module:
    """Return a copy of a box predictor widened to ``new_num_classes`` foreground classes (DKAN/TFA ``random_init``).

    Old rows of the classifier and the box regressor (background included) are copied bit for bit; new rows get
    weights ~ N(0, init_std) and zero bias, as in MMFewShot's ``initialize_bbox_head.py --method random_init``.

    Args:
        predictor: :class:`LinearBoxPredictor` or :class:`CosineBoxPredictor` with C_old + 1 outputs.
        new_num_classes: C_new >= C_old foreground classes.
        init_std: std of the new rows.
        generator: RNG for the new rows (pass one for reproducible surgery).

    Raises:
        TypeError: unsupported predictor type.
        ValueError: ``new_num_classes`` smaller than the current number of classes.
    """
    if not isinstance(predictor, LinearBoxPredictor | CosineBoxPredictor):
        raise TypeError(
            f"expand_classes supports LinearBoxPredictor/CosineBoxPredictor, got {type(predictor).__name__}"
        )
    old_n = predictor.num_classes  # includes background
    if new_num_classes + 1 < old_n:
        raise ValueError(f"new_num_classes={new_num_classes} is smaller than the current {old_n - 1} classes")
    new = copy.deepcopy(predictor)
    cls_w, cls_b = _widen_linear(
        predictor.cls_score if isinstance(predictor.cls_score, nn.Linear) else None,
        predictor.cls_score.weight.detach(),
        new_num_classes + 1,
        old_n,
        init_std,
        generator,
    )
    reg_w, reg_b = _widen_linear(
        predictor.bbox_pred,
        predictor.bbox_pred.weight.detach(),
        (new_num_classes + 1) * 4,
        old_n * 4,
        init_std,
        generator,
    )
    new.cls_score.weight = nn.Parameter(cls_w)
    if cls_b is not None:
        new.cls_score.bias = nn.Parameter(cls_b)
    if hasattr(new.cls_score, "out_features"):
        new.cls_score.out_features = new_num_classes + 1
    new.bbox_pred.weight = nn.Parameter(reg_w)
    new.bbox_pred.bias = nn.Parameter(reg_b)
    new.bbox_pred.out_features = (new_num_classes + 1) * 4
    new.num_classes = new_num_classes + 1
    return new


@torch.no_grad()
def to_cosine_predictor(predictor: LinearBoxPredictor, scale: float = 20.0) -> CosineBoxPredictor:
    """Cosine predictor initialised from a linear one: classifier weights copied (bias dropped), regressor copied.

    This is what loading the surgically widened linear checkpoint into MMFewShot's ``CosineSimBBoxHead`` does.
    """
    if not isinstance(predictor, LinearBoxPredictor):
        raise TypeError(f"expected a LinearBoxPredictor, got {type(predictor).__name__}")
    feat = predictor.cls_score.in_features
    cos = CosineBoxPredictor(feat, predictor.num_classes, scale=scale)
    cos.cls_score.weight.copy_(predictor.cls_score.weight)
    cos.bbox_pred.load_state_dict(predictor.bbox_pred.state_dict())
    return cos


def widen_detector(
    model: FasterRCNN, new_num_classes: int, init_std: float = 0.01, generator: torch.Generator | None = None
) -> FasterRCNN:
    """Copy of ``model`` whose box predictor covers ``new_num_classes`` (old rows unchanged)."""
    new = copy.deepcopy(model)
    new.roi_heads.box_predictor = expand_classes(model.roi_heads.box_predictor, new_num_classes, init_std, generator)
    new.num_classes = new_num_classes
    return new


def apply_freeze(model: nn.Module, policy: str | Sequence[str]) -> list[str]:
    """Freeze parameters whose ``named_parameters()`` name matches a pattern; return the frozen names.

    Args:
        model: the network (module paths as in :class:`FasterRCNN`).
        policy: a ``FREEZE_POLICIES`` key or a list of fnmatch patterns such as ``"backbone.*"``.

    Raises:
        KeyError: unknown policy name.
        ValueError: a pattern that matches no parameter (a typo would otherwise freeze nothing silently).
    """
    if isinstance(policy, str):
        if policy not in FREEZE_POLICIES:
            raise KeyError(f"unknown freeze policy {policy!r}; valid: {sorted(FREEZE_POLICIES)}")
        patterns: Sequence[str] = FREEZE_POLICIES[policy]
    else:
        patterns = list(policy)
    names = [n for n, _ in model.named_parameters()]
    for pat in patterns:
        if not any(fnmatch.fnmatchcase(n, pat) for n in names):
            raise ValueError(f"freeze pattern {pat!r} matches no parameter; examples: {names[:5]}")
    frozen = []
    for name, p in model.named_parameters():
        if any(fnmatch.fnmatchcase(name, pat) for pat in patterns):
            p.requires_grad_(False)
            frozen.append(name)
    logger.info("froze %d of %d parameter tensors (%s)", len(frozen), len(names), policy)
    return frozen


def build_incremental_pair(
    base: FasterRCNN,
    num_new_classes: int,
    cosine_scale: float = 20.0,
    freeze: str | Sequence[str] = "dkan",
    init_std: float = 0.01,
    seed: int = 0,
) -> tuple[FasterRCNN, FasterRCNN]:
    """Teacher and student for incremental fine-tuning from a base detector.

    Teacher: the base detector widened by head surgery (linear classifier, novel rows random), to be frozen by the
    distiller. Student: the same widened weights with a cosine classifier (``cosine_scale`` > 0) or the linear one
    (``cosine_scale`` = 0), with ``freeze`` applied. Both share the same random novel rows, as in DKAN where both load
    the one ``random_init`` checkpoint.

    Args:
        base: trained base detector (linear predictor, C_base classes).
        num_new_classes: number of novel classes appended after the base classes.
        cosine_scale: student classifier scale; 0 keeps the linear classifier.
        freeze: freeze policy of the student (``FREEZE_POLICIES`` key or patterns).
        init_std: std of the novel rows.
        seed: seed of the novel-row initialisation.
    """
    if not isinstance(base.roi_heads.box_predictor, LinearBoxPredictor):
        raise TypeError("the base detector must have a linear box predictor (train stage I with cosine_scale=0)")
    g = torch.Generator().manual_seed(seed)
    teacher = widen_detector(base, base.num_classes + num_new_classes, init_std, g)
    student = copy.deepcopy(teacher)
    if cosine_scale > 0:
        student.roi_heads.box_predictor = to_cosine_predictor(teacher.roi_heads.box_predictor, cosine_scale)
    apply_freeze(student, freeze)
    return teacher, student
