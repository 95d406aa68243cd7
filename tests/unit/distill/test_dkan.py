import copy
import math

import pytest
import torch
from tests.helpers.tiny_detector import tiny_faster_rcnn, tiny_targets

from kdinspect.data.structures import Batch, ImageMeta
from kdinspect.distill import DISTILLERS
from kdinspect.distill.dkan import SPLIT_PARAMS, DKANDistiller, fka_losses, lka_loss
from kdinspect.tasks.detection import DetectionTask
from kdinspect.tasks.incremental import build_incremental_pair


def test_fka_zero_for_identical_features_and_hand_value():
    f = torch.randn(2, 3, 4, 4)
    out = fka_losses([f] * 4, [f.clone()] * 4, tau=1.0, weight=5.0)
    assert list(out) == ["fka_p2", "fka_p3", "fka_p4", "fka_p5"]
    assert all(abs(v.item()) < 1e-6 for v in out.values())
    # one map, one channel, two positions: teacher logits (0, ln 3) -> p = (1/4, 3/4); student (0, 0) -> q = (1/2, 1/2)
    t = torch.tensor([0.0, math.log(3.0)]).view(1, 1, 1, 2)
    s = torch.zeros(1, 1, 1, 2)
    kl = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    got = fka_losses([s], [t], tau=1.0, weight=2.0)["fka_p2"].item()
    assert got == pytest.approx(2.0 * kl, rel=1e-5)
    # tau scales inputs by 1/tau and the loss by tau^2
    t2 = t * 2.0
    assert fka_losses([s], [t2], tau=2.0, weight=1.0)["fka_p2"].item() == pytest.approx(4.0 * kl, rel=1e-5)


def test_lka_uses_only_base_columns_and_hand_value():
    torch.manual_seed(0)
    z = torch.randn(6, 7)
    assert lka_loss(z, z.clone(), num_base=3).item() == pytest.approx(0.0, abs=1e-7)
    other = z.clone()
    other[:, 0] += 5.0  # background column
    other[:, 4:] -= 3.0  # novel columns
    assert lka_loss(other, z, num_base=3).item() == pytest.approx(0.0, abs=1e-7)
    # one row, base logits: teacher (ln 3 * tau, 0) student (0, 0) -> KL(1/4..) mirrored, tau = 5, weight = 0.01
    tau = 5.0
    t = torch.tensor([[9.0, math.log(3.0) * tau, 0.0, 1.0]])
    s = torch.tensor([[-2.0, 0.0, 0.0, 7.0]])
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert lka_loss(s, t, num_base=2, tau=tau, weight=0.01).item() == pytest.approx(0.01 * tau**2 * kl, rel=1e-5)
    # a student that is not uniform: both sides are softened by tau (student (0, ln 3 * tau) -> (1/4, 3/4)); a
    # temperature applied to one side only gives another value (softmax(0, 5 ln 3) = (1/244, 243/244))
    s2 = torch.tensor([[0.0, 0.0, math.log(3.0) * tau, -4.0]])
    kl2 = 0.5 * math.log(3.0)  # KL((3/4, 1/4) || (1/4, 3/4))
    assert lka_loss(s2, t, num_base=2, tau=tau, weight=0.01).item() == pytest.approx(0.01 * tau**2 * kl2, rel=1e-5)
    # batchmean: two identical rows give the same value as one
    assert lka_loss(s.repeat(2, 1), t.repeat(2, 1), 2, tau, 0.01).item() == pytest.approx(0.01 * tau**2 * kl, rel=1e-5)


def test_lka_pairs_the_common_rows():
    s, t = torch.randn(5, 4), torch.randn(3, 4)
    assert torch.isclose(lka_loss(s, t, 2), lka_loss(s[:3], t, 2))
    assert lka_loss(torch.zeros(0, 4, requires_grad=True), t, 2).item() == 0.0


def _batch(n: int = 2) -> Batch:
    metas = [ImageMeta(path="x.jpg", image_id=str(i), orig_size=(64, 64), input_size=(64, 64)) for i in range(n)]
    return Batch(torch.rand(n, 3, 64, 64), tiny_targets(n, 6), metas)


@pytest.mark.parametrize("mode", ["unaligned", "aligned"])
def test_distiller_terms_and_backward(mode):
    teacher, student = build_incremental_pair(tiny_faster_rcnn(3), 3, cosine_scale=20.0, freeze="dkan")
    task = DetectionTask(student, ["c"] * 6)
    distiller = DISTILLERS["dkan"](task, teacher, num_base_classes=3, split=1, lka_mode=mode).train()
    assert (distiller.fka_tau, distiller.fka_weight) == (SPLIT_PARAMS[1]["fka_tau"], SPLIT_PARAMS[1]["fka_weight"])
    out = distiller(_batch())
    expected = {f"distill.fka_p{i}" for i in range(2, 6)} | {"distill.lka", "loss"}
    assert expected <= set(out)
    assert {"student.loss_cls", "student.loss_bbox"} <= set(out)
    assert all(torch.isfinite(v) for v in out.values())
    out["loss"].backward()
    assert student.neck.layer_blocks[0][0].weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())
    assert not teacher.training


def test_distillation_is_zero_when_teacher_equals_student():
    base = tiny_faster_rcnn(3)
    teacher, _ = build_incremental_pair(base, 3, cosine_scale=0.0, freeze="dkan")  # linear student
    student_copy = copy.deepcopy(teacher)
    distiller = DKANDistiller(DetectionTask(student_copy, ["c"] * 6), teacher, 3, lka_mode="aligned").train()
    out = distiller(_batch())
    for key in ("distill.fka_p2", "distill.fka_p3", "distill.fka_p4", "distill.fka_p5", "distill.lka"):
        assert abs(out[key].item()) < 1e-6, key
    # ... and each term moves when (only) what it distils differs: the P2 output conv -> FKA on P2 alone; the base
    # rows of the classifier -> LKA alone (the features stay equal)
    torch.manual_seed(0)
    batch = _batch()
    with torch.no_grad():
        student_copy.neck.layer_blocks[0][0].weight.add_(0.5)
    out = distiller(batch)
    assert out["distill.fka_p2"].item() > 1e-3 and out["distill.lka"].item() < 1e-4  # proposals move a little
    assert all(abs(out[f"distill.fka_p{i}"].item()) < 1e-6 for i in (3, 4, 5))
    with torch.no_grad():
        student_copy.neck.layer_blocks[0][0].weight.sub_(0.5)
        cls_score = student_copy.roi_heads.box_predictor.cls_score  # base columns 1..3 (0 = background)
        cls_score.weight[1:4].mul_(-1.0)
        cls_score.bias[1].add_(3.0)
    out = distiller(batch)
    assert out["distill.lka"].item() > 1e-3, out["distill.lka"]
    assert all(abs(out[f"distill.fka_p{i}"].item()) < 1e-6 for i in (2, 3, 4, 5))


def test_distiller_argument_errors():
    teacher, student = build_incremental_pair(tiny_faster_rcnn(3), 3)
    task = DetectionTask(student, ["c"] * 6)
    with pytest.raises(ValueError, match="lka_mode"):
        DKANDistiller(task, teacher, 3, lka_mode="bogus")
    with pytest.raises(ValueError, match="num_base_classes"):
        DKANDistiller(task, teacher, 9)
    with pytest.raises(KeyError, match="split"):
        DISTILLERS["dkan"](task, teacher, 3, split=4)
