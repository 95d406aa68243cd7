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
