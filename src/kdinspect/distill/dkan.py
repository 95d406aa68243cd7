"""DKAN distillation (Dual Knowledge Align Network, Sun et al. 2022): FKA + LKA on a Faster R-CNN student.

- **FKA** (feature knowledge align) = channel-wise distillation (CWD) between teacher and student FPN outputs P2..P5,
  one term per level, each ``weight * tau^2 / (N C) * sum KL(spatial softmax)`` (MMRazor ``ChannelWiseDivergence``).
- **LKA** (logit knowledge align) = ``weight * tau^2 * KL(softmax(z_T/tau) || softmax(z_S/tau))`` over the base-class
  columns only, ``batchmean`` over RoIs (DKAN ``ICKLDivergence``). The student's value is the output of its
  ``roi_heads.box_predictor.cls_score``: the raw cosine (before the x20 scale) for a cosine head, as released.

LKA RoI modes:

- ``unaligned`` (released code): teacher and student each run their own RPN and their own random RoI sampling; row
  ``r`` of the two logit matrices is generally a different RoI.
- ``aligned``: the RoIs the student sampled are pooled from the teacher's features and fed to the teacher's box head,
  so both rows describe the same RoI.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from kdinspect.data.structures import Batch
from kdinspect.distill.distiller import Distiller
from kdinspect.distill.losses import channel_wise_divergence, kd_kl
from kdinspect.distill.taps import FeatureTaps
from kdinspect.tasks.base import Task

__all__ = ["LKA_MODES", "SPLIT_PARAMS", "DKANDistiller", "build_dkan", "fka_losses", "lka_loss"]

logger = logging.getLogger(__name__)

FKA_LEVELS = ("0", "1", "2", "3")  # FPN output keys of P2..P5 (P6 = "pool" is not distilled)
LKA_TAP = "roi_heads.box_predictor.cls_score"
LKA_MODES = ("unaligned", "aligned")
# Per-split FKA hyper-parameters of the released configs (configs/distill/split_{1,2,3}/dkan_*shot_fine_tuning.py).
SPLIT_PARAMS: dict[int, dict[str, float]] = {
    1: {"fka_tau": 5.0, "fka_weight": 1.0},
    2: {"fka_tau": 1.0, "fka_weight": 5.0},
    3: {"fka_tau": 1.0, "fka_weight": 5.0},
}


def fka_losses(
    student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor], tau: float, weight: float
) -> dict[str, Tensor]:
    """FKA per pyramid level.

    Args:
        student_feats: P2..P5 maps, each (N, C, H_l, W_l).
        teacher_feats: the teacher's maps of the same shapes (no gradient flows into them).
        tau: CWD temperature.
        weight: weight of every level's term.

    Returns:
        ``{"fka_p2": ..., "fka_p5": ...}`` weighted scalars.
    """
    if len(student_feats) != len(teacher_feats):
        raise ValueError(
            f"FKA needs as many teacher as student levels, got {len(teacher_feats)} vs {len(student_feats)}"
        )
    return {
        f"fka_p{i + 2}": weight * channel_wise_divergence(s, t, tau)
        for i, (s, t) in enumerate(zip(student_feats, teacher_feats))
    }


def lka_loss(
    student_logits: Tensor, teacher_logits: Tensor, num_base: int, tau: float = 5.0, weight: float = 0.01
) -> Tensor:
    """LKA: KL(teacher || student) on the base-class columns, ``batchmean`` over rows, times ``tau^2 * weight``.

    Args:
        student_logits: (R_s, C + 1) student classifier outputs (column 0 = background, 1..C_base = base classes).
        teacher_logits: (R_t, C + 1) teacher classifier outputs.
        num_base: number of base classes C_base.
        tau: temperature.
        weight: loss weight.

    When R_s != R_t (independent RoI sampling can come up short of the batch size) the first min(R_s, R_t) rows are
    paired, which is the only pairing the unaligned released code could have.
    """
    rows = min(student_logits.shape[0], teacher_logits.shape[0])
    if rows == 0:
        return student_logits.sum() * 0.0
    cols = slice(1, 1 + num_base)
    return weight * kd_kl(student_logits[:rows, cols], teacher_logits[:rows, cols], tau, reduction="batchmean")


class _RoIRecorder:
    """Records the (sampled) proposals and image sizes entering a ``MultiScaleRoIAlign`` module."""

    def __init__(self, pool: nn.Module) -> None:
        self.pool = pool
        self.proposals: list[Tensor] = []
        self.image_sizes: list[tuple[int, int]] = []
        self._handle: Any = None

    def _hook(self, _module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        _features, proposals, image_sizes = (list(args) + [kwargs.get(k) for k in ("x", "boxes", "image_shapes")])[:3]
        self.proposals = [p.detach() for p in proposals]
        self.image_sizes = list(image_sizes)

    def __enter__(self) -> _RoIRecorder:
        self.proposals, self.image_sizes = [], []
        self._handle = self.pool.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()


@contextmanager
def _heads_training(model: nn.Module) -> Iterator[None]:
    """Put a detector's RPN and RoI heads (no BN, no dropout) in train mode so they sample RoIs; restore after."""
    modes = (model.rpn.training, model.roi_heads.training)
    model.rpn.train()
    model.roi_heads.train()
    try:
        yield
    finally:
        model.rpn.train(modes[0])
        model.roi_heads.train(modes[1])


class DKANDistiller(Distiller):
    """Student Faster R-CNN task + frozen widened base detector, with FKA and LKA.

    Args:
        student: detection task whose model is a :class:`~kdinspect.models.faster_rcnn.FasterRCNN`.
        teacher: the widened base detector (linear classifier), frozen here.
        num_base_classes: C_base; LKA compares foreground columns 1..C_base.
        fka_tau: FKA temperature (split 1: 5, splits 2/3: 1).
        fka_weight: FKA weight per level (split 1: 1, splits 2/3: 5).
        lka_tau: LKA temperature (5).
        lka_weight: LKA weight (0.01).
        lka_mode: ``unaligned`` (released) or ``aligned`` (teacher scores the student's RoIs).
        weight: global multiplier on all distillation terms.
    """

    def __init__(
        self,
        student: Task,
        teacher: nn.Module,
        num_base_classes: int,
        fka_tau: float = 1.0,
        fka_weight: float = 5.0,
        lka_tau: float = 5.0,
        lka_weight: float = 0.01,
        lka_mode: str = "unaligned",
        weight: float = 1.0,
    ) -> None:
        super().__init__(student, teacher, weight)
        if lka_mode not in LKA_MODES:
            raise ValueError(f"lka_mode {lka_mode!r} not in {list(LKA_MODES)}")
        if not 0 < num_base_classes <= student.model.num_classes:
            raise ValueError(f"num_base_classes={num_base_classes} outside 1..{student.model.num_classes}")
        self.num_base_classes = num_base_classes
        self.fka_tau, self.fka_weight = fka_tau, fka_weight
        self.lka_tau, self.lka_weight = lka_tau, lka_weight
        self.lka_mode = lka_mode
        self._student_taps = FeatureTaps(student.model, ["neck", LKA_TAP])
        self._student_rois = _RoIRecorder(student.model.roi_heads.box_roi_pool)

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        with self._student_taps, self._student_rois:
            return super().forward(batch)

    @torch.no_grad()
    def _teacher_outputs(self, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        """Teacher FPN maps and base-class-bearing classifier outputs for this batch."""
        t = self.teacher
        t.eval()
        feats = t.extract_features(batch.images)
        if self.lka_mode == "aligned":
            rois = self._student_rois
            pooled = t.roi_heads.box_roi_pool(feats, rois.proposals, rois.image_sizes)
            logits = t.roi_heads.box_predictor.cls_score(t.roi_heads.box_head(pooled).flatten(1))
            return feats, logits
        taps = FeatureTaps(t, [LKA_TAP])
        with _heads_training(t), taps:
            t.compute_loss(feats, batch.images, batch.targets)
        return feats, taps.outputs[LKA_TAP]

    def distill_losses(self, batch: Batch, student_out: dict[str, Tensor]) -> dict[str, Tensor]:
        s_feats = self._student_taps.outputs["neck"]
        s_logits = self._student_taps.outputs[LKA_TAP]
        t_feats, t_logits = self._teacher_outputs(batch)
        if s_logits.shape[0] != t_logits.shape[0]:
            logger.debug("LKA rows differ (student %d, teacher %d)", s_logits.shape[0], t_logits.shape[0])
        losses = fka_losses(
            [s_feats[k] for k in FKA_LEVELS], [t_feats[k] for k in FKA_LEVELS], self.fka_tau, self.fka_weight
        )
        losses["lka"] = lka_loss(s_logits, t_logits, self.num_base_classes, self.lka_tau, self.lka_weight)
        return losses


def build_dkan(
    student: Task,
    teacher: nn.Module,
    num_base_classes: int,
    split: int = 0,
    fka_tau: float | None = None,
    fka_weight: float | None = None,
    lka_tau: float = 5.0,
    lka_weight: float = 0.01,
    lka_mode: str = "unaligned",
    weight: float = 1.0,
) -> DKANDistiller:
    """``DISTILLERS["dkan"]``: FKA tau/weight default to the released per-split values (``split`` 1..3), else 1 / 5.

    Raises:
        KeyError: ``split`` not in 0 (none), 1, 2, 3.
    """
    if split and split not in SPLIT_PARAMS:
        raise KeyError(f"split {split} has no released DKAN parameters; valid: {sorted(SPLIT_PARAMS)} (or 0)")
    table = SPLIT_PARAMS.get(split, SPLIT_PARAMS[2])
    return DKANDistiller(
        student,
        teacher,
        num_base_classes,
        fka_tau=table["fka_tau"] if fka_tau is None else fka_tau,
        fka_weight=table["fka_weight"] if fka_weight is None else fka_weight,
        lka_tau=lka_tau,
        lka_weight=lka_weight,
        lka_mode=lka_mode,
        weight=weight,
    )
