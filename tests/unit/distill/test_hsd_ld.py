"""HSD distiller: LD on the student's positives, both normalisations, and a teacher-free student."""

from __future__ import annotations

import copy

import pytest
import torch

from kdinspect.data.structures import Batch, DetTarget, ImageMeta
from kdinspect.distill import DISTILLERS, HSDDistiller
from kdinspect.losses.gfl import ld_kl_loss
from kdinspect.models import build_model
from kdinspect.models.gfl import GFL
from kdinspect.tasks.detection import DetectionTask

PARAMS = {"backbone": "mobilenet_v3_small", "channels": 32, "norm_eval": True}


def make(name: str, seed: int) -> GFL:
    torch.manual_seed(seed)
    return build_model(name, 2, PARAMS)  # type: ignore[return-value]


def batch() -> Batch:
    torch.manual_seed(1)
    images = torch.rand(2, 3, 64, 64)
    targets = [
        DetTarget(torch.tensor([[4.0, 6.0, 40.0, 30.0], [30.0, 30.0, 60.0, 62.0]]), torch.tensor([0, 1])),
        DetTarget(torch.tensor([[10.0, 10.0, 50.0, 40.0]]), torch.tensor([1])),
    ]
    metas = [ImageMeta(f"img{i}.jpg", f"img{i}", (64, 64), (64, 64)) for i in range(2)]
    return Batch(images=images, targets=targets, metas=metas)


def test_ld_is_zero_when_teacher_equals_student() -> None:
    student = make("hsd_student", 0)
    distiller = DISTILLERS["hsd_ld"](DetectionTask(student, ["a", "b"]), copy.deepcopy(student))
    out = distiller.train()(batch())
    assert abs(out["distill.loss_ld"].item()) < 1e-4
    assert {"student.loss_cls", "student.loss_bbox", "student.loss_dfl", "distill.loss_ld", "loss"} == set(out)


@pytest.mark.parametrize("ld_norm", ["released", "avg_weight"])
def test_ld_value_and_normalisation(ld_norm: str) -> None:
    student, teacher = make("hsd_student", 0), make("hsd_teacher", 1)
    distiller = HSDDistiller(
        DetectionTask(student, ["a", "b"]), teacher, temperature=15.0, weight=0.25, ld_norm=ld_norm
    )
    b = batch()
    out = distiller.train()(b)
    # recompute by hand from the pieces: 0.25 * sum_{i,side} w_i KL_i / 4 [/ W]
    s_out = student.forward_raw(b.images)
    assignment = student.assign(s_out, b.targets)
    with torch.no_grad():
        t_out = teacher.forward_raw(b.images)
    w = student.positive_weights(s_out, assignment)
    t_pos = t_out.reg.reshape(-1, 68)[assignment.pos_index].reshape(-1, 17)
    kl = ld_kl_loss(student.positive_reg(s_out, assignment), t_pos, 15.0)
    want = 0.25 * (w.repeat_interleave(4) * kl).sum() / 4
    if ld_norm == "avg_weight":
        want = want / w.sum()
    assert assignment.pos_index.numel() > 0
    assert out["distill.loss_ld"].item() == pytest.approx(want.item(), rel=1e-5)
    total = sum(v for k, v in out.items() if k != "loss")
    assert out["loss"].item() == pytest.approx(total.item(), rel=1e-6)


def test_teacher_is_frozen_and_not_saved() -> None:
    student, teacher = make("hsd_student", 0), make("hsd_teacher", 1)
    distiller = HSDDistiller(DetectionTask(student, ["a", "b"]), teacher)
    out = distiller.train()(batch())
    out["loss"].backward()
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert not teacher.training
    saved = distiller.deployable().state_dict()
    assert saved.keys() == student.state_dict().keys()
    assert not any("teacher" in k for k in distiller.state_dict())
    assert all(p.data_ptr() not in {q.data_ptr() for q in teacher.parameters()} for p in distiller.parameters())


def test_mismatched_teacher_is_rejected() -> None:
    student = make("hsd_student", 0)
    with pytest.raises(TypeError, match="GFL teacher"):
        HSDDistiller(DetectionTask(student, ["a", "b"]), torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="ld_norm"):
        HSDDistiller(DetectionTask(student, ["a", "b"]), make("hsd_teacher", 1), ld_norm="bogus")


@pytest.mark.parametrize("ld_norm", ["released", "avg_weight"])
def test_ld_hand_value_on_two_positives(ld_norm: str) -> None:
    """Two positives (image 0 anchor 1, image 1 anchor 2) with head outputs set by hand; every other anchor carries
    different student and teacher values, so reading the wrong rows changes the result."""
    import math

    from kdinspect.models.gfl import GFLAssignment, GFLOutputs

    student, teacher = make("hsd_student", 0), make("hsd_teacher", 1)
    distiller = HSDDistiller(DetectionTask(student, ["a", "b"]), teacher, temperature=2.0, weight=0.25, ld_norm=ld_norm)
    n_anchors, bins = 4, student.reg_max + 1
    g = torch.Generator().manual_seed(0)
    s_cls, s_reg = torch.randn(2, n_anchors, 2, generator=g) * 3, torch.randn(2, n_anchors, 4 * bins, generator=g)
    t_reg = torch.randn(2, n_anchors, 4 * bins, generator=g)
    # positive 1: class logits (0, ln 3) -> w = 3/4; sides equal between student and teacher except
    # side 1 (top), where the student is uniform (1/17) and the teacher puts T ln 16 on one bin -> (1/2, 1/32 x 16)
    s_cls[0, 1] = torch.tensor([0.0, math.log(3.0)])
    s_reg[0, 1] = t_reg[0, 1] = torch.randn(4 * bins, generator=g)
    s_reg[0, 1, bins : 2 * bins] = 0.0
    t_reg[0, 1, bins : 2 * bins] = 0.0
    t_reg[0, 1, bins + 5] = 2.0 * math.log(16.0)
    # positive 2: class logits (0, -1) -> w = 1/2; teacher = student on all four sides (KL 0)
    s_cls[1, 2] = torch.tensor([0.0, -1.0])
    t_reg[1, 2] = s_reg[1, 2]
    outputs = (GFLOutputs(s_cls, s_reg, [(2, 2)], (64, 64)), GFLOutputs(s_cls * 0, t_reg, [(2, 2)], (64, 64)))
    student.forward_raw = lambda images: outputs[0]  # type: ignore[method-assign]
    teacher.forward_raw = lambda images: outputs[1]  # type: ignore[method-assign]
    labels = torch.full((2 * n_anchors,), 2)
    labels[[1, n_anchors + 2]] = torch.tensor([1, 0])
    assignment = GFLAssignment(
        labels,
        torch.tensor([1, n_anchors + 2]),
        torch.tensor([[8.0, 8.0, 40.0, 40.0], [16.0, 16.0, 48.0, 40.0]]),
        torch.tensor([[24.0, 24.0], [32.0, 28.0]]),
        torch.tensor([8.0, 8.0]),
    )
    student.assign = lambda out, targets: assignment  # type: ignore[method-assign]
    out = distiller.train()(batch())
    # KL_T = T^2 * mean over 17 bins of p (ln p - ln q), q = 1/17: one bin of 1/2 and 16 bins of 1/32
    kl = 4.0 * (0.5 * math.log(0.5 * 17) + 16 * (1 / 32) * math.log(17 / 32)) / 17
    want = 0.25 * (0.75 * kl) / 4  # weight * sum_i,side w_i KL / 4
    if ld_norm == "avg_weight":
        want /= 0.75 + 0.5  # / W
    assert out["distill.loss_ld"].item() == pytest.approx(want, rel=1e-5)
