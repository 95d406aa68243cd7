"""GFL-family losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from kdinspect.losses.gfl import (
    aligned_iou,
    bbox2distance,
    distance2bbox,
    distribution_focal_loss,
    giou_loss,
    ld_kl_loss,
    quality_focal_loss,
    sigmoid_bce_loss,
)

LN2 = math.log(2.0)


def test_sigmoid_bce_one_hot_and_background() -> None:
    logits = torch.tensor([[0.0, 2.0], [0.0, 2.0]])
    loss = sigmoid_bce_loss(logits, torch.tensor([1, 2]))  # class 1; background (= num_classes)
    softplus_m2 = math.log1p(math.exp(-2.0))  # BCE(2, target 1)
    assert loss.tolist() == pytest.approx([LN2 + softplus_m2, LN2 + 2.0 + softplus_m2], abs=1e-6)


def test_quality_focal_loss() -> None:
    logits = torch.zeros(3, 2)
    labels = torch.tensor([0, 0, 2])
    scores = torch.tensor([0.5, 1.0, 0.0])
    loss = quality_focal_loss(logits, labels, scores, beta=2.0)
    # every entry has p = 0.5: negatives cost ln2 * 0.5^2; a positive with target s costs BCE(0, s) * |s - 0.5|^2
    neg = LN2 * 0.25
    assert loss.tolist() == pytest.approx([LN2 * 0.0 + neg, LN2 * 0.25 + neg, 2 * neg], abs=1e-6)


def test_giou_loss() -> None:
    # inter 1, union 7, hull 9: GIoU = 1/7 - 2/9
    loss = giou_loss(torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[1.0, 1, 3, 3]]))
    assert loss.item() == pytest.approx(1 - (1 / 7 - 2 / 9), abs=1e-6)
    assert aligned_iou(torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[1.0, 1, 3, 3]])).item() == pytest.approx(1 / 7)


def test_distribution_focal_loss() -> None:
    # softmax([0, ln2, 0]) = [0.25, 0.5, 0.25]; y = 0.25 -> 0.75 * -ln 0.25 + 0.25 * -ln 0.5
    pred = torch.tensor([[0.0, LN2, 0.0]])
    loss = distribution_focal_loss(pred, torch.tensor([0.25]))
    assert loss.item() == pytest.approx(0.75 * math.log(4) + 0.25 * LN2, abs=1e-6)


@pytest.mark.parametrize("t", [1.0, 2.0])
def test_ld_kl_loss(t: float) -> None:
    # teacher softmax(logits / T) = [.75, .25], student [.5, .5]: KL = .75 ln 1.5 + .25 ln .5, mean of 2 bins, * T^2
    teacher = torch.tensor([[t * math.log(3.0), 0.0]])
    student = torch.zeros(1, 2)
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert ld_kl_loss(student, teacher, t).item() == pytest.approx(kl / 2 * t * t, abs=1e-6)


def test_ld_kl_zero_for_equal_logits_and_no_teacher_gradient() -> None:
    logits = torch.randn(5, 17, requires_grad=True)
    teacher = logits.detach().clone().requires_grad_(True)
    loss = ld_kl_loss(logits, teacher, 15.0)
    assert loss.abs().max().item() < 1e-5  # float32 rounding times T^2 = 225
    loss.sum().backward()
    assert teacher.grad is None


def test_box_distance_roundtrip_and_clamp() -> None:
    points = torch.tensor([[5.0, 5.0]])
    boxes = torch.tensor([[1.0, 2.0, 30.0, 9.0]])
    d = bbox2distance(points, boxes, max_dis=16)
    assert d[0].tolist() == pytest.approx([4.0, 3.0, 15.9, 4.0])  # right side clamped to 16 - 0.1
    assert distance2bbox(points, torch.tensor([[4.0, 3.0, 25.0, 4.0]])).tolist() == [[1.0, 2.0, 30.0, 9.0]]
