import pytest
import torch
from tests.helpers.tiny_detector import tiny_faster_rcnn

from kdinspect.models.heads.cosine_head import CosineBoxPredictor, LinearBoxPredictor
from kdinspect.tasks.incremental import (
    FREEZE_POLICIES,
    apply_freeze,
    build_incremental_pair,
    expand_classes,
    to_cosine_predictor,
)


def _trained_linear(num_classes: int = 3) -> LinearBoxPredictor:
    torch.manual_seed(0)
    pred = LinearBoxPredictor(32, num_classes + 1)
    with torch.no_grad():
        for p in pred.parameters():
            p.normal_()  # distinct, non-trivial values in every row
    return pred


def test_expand_classes_keeps_old_rows_bit_identical():
    old = _trained_linear(3)
    new = expand_classes(old, 6, init_std=0.01, generator=torch.Generator().manual_seed(0))
    assert new.cls_score.weight.shape == (7, 32) and new.cls_score.bias.shape == (7,)
    assert new.bbox_pred.weight.shape == (28, 32) and new.bbox_pred.bias.shape == (28,)
    assert new.num_classes == 7
    assert torch.equal(new.cls_score.weight[:4], old.cls_score.weight)  # background + 3 base rows
    assert torch.equal(new.cls_score.bias[:4], old.cls_score.bias)
    assert torch.equal(new.bbox_pred.weight[:16], old.bbox_pred.weight)
    assert torch.equal(new.bbox_pred.bias[:16], old.bbox_pred.bias)
    novel = new.cls_score.weight[4:]
    assert novel.std().item() == pytest.approx(0.01, rel=0.3)
    assert torch.count_nonzero(new.cls_score.bias[4:]) == 0 and torch.count_nonzero(new.bbox_pred.bias[16:]) == 0
    scores, deltas = new(torch.randn(5, 32))
    assert scores.shape == (5, 7) and deltas.shape == (5, 28)


def test_expand_classes_is_seeded_and_leaves_input_untouched():
    old = _trained_linear(2)
    before = old.cls_score.weight.clone()
    a = expand_classes(old, 4, generator=torch.Generator().manual_seed(3))
    b = expand_classes(old, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.cls_score.weight, b.cls_score.weight)
    assert torch.equal(old.cls_score.weight, before)


def test_expand_classes_cosine_and_errors():
    cos = CosineBoxPredictor(32, 4)
    new = expand_classes(cos, 5)
    assert new.cls_score.weight.shape == (6, 32) and torch.equal(new.cls_score.weight[:4], cos.cls_score.weight)
    with pytest.raises(ValueError, match="smaller"):
        expand_classes(cos, 1)
    with pytest.raises(TypeError):
        expand_classes(torch.nn.Linear(3, 3), 5)


def test_to_cosine_predictor_copies_rows_and_drops_bias():
    lin = _trained_linear(3)
    cos = to_cosine_predictor(lin, scale=20.0)
    assert torch.equal(cos.cls_score.weight, lin.cls_score.weight)
    assert torch.equal(cos.bbox_pred.weight, lin.bbox_pred.weight)
    assert cos.scale == 20.0 and not hasattr(cos.cls_score, "bias")


def test_freeze_policies():
    model = tiny_faster_rcnn(3)
    apply_freeze(model, "tfa")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("roi_heads.box_predictor.") for n in trainable)
    model = tiny_faster_rcnn(3)
    frozen = apply_freeze(model, "dkan")
    assert frozen and all(n.startswith("backbone.") for n in frozen)
    assert any(p.requires_grad for n, p in model.named_parameters() if n.startswith("neck."))
    with pytest.raises(ValueError, match="matches no parameter"):
        apply_freeze(model, ["bakcbone.*"])
    with pytest.raises(KeyError):
        apply_freeze(model, "nope")
    assert set(FREEZE_POLICIES) >= {"dkan", "tfa", "none"}


def test_build_incremental_pair():
    base = tiny_faster_rcnn(3)
    teacher, student = build_incremental_pair(base, 3, cosine_scale=20.0, freeze="dkan", seed=1)
    tp, sp = teacher.roi_heads.box_predictor, student.roi_heads.box_predictor
    assert isinstance(tp, LinearBoxPredictor) and isinstance(sp, CosineBoxPredictor)
    assert teacher.num_classes == student.num_classes == 6
    assert torch.equal(tp.cls_score.weight[:4], base.roi_heads.box_predictor.cls_score.weight)
    assert torch.equal(sp.cls_score.weight, tp.cls_score.weight)  # same random novel rows
    assert torch.equal(student.neck.layer_blocks[0][0].weight, base.neck.layer_blocks[0][0].weight)
    assert not any(p.requires_grad for p in student.backbone.parameters())
    assert all(p.requires_grad for p in teacher.backbone.parameters())  # the distiller freezes the teacher
    with pytest.raises(TypeError):
        build_incremental_pair(student, 1)
