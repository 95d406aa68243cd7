"""Two-channel crack-map losses on hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from kdinspect.losses.segmentation import (
    asymmetric_binary_loss,
    bce_dice_loss,
    compute_map_loss,
    soft_dice_loss,
    two_channel,
    two_channel_kl,
)


def _pair(p0: float, p1: float, shape=(1, 1, 2, 2)) -> torch.Tensor:
    return torch.cat([torch.full(shape, p0), torch.full(shape, p1)], dim=1)


def test_asymmetric_loss_hand_values():
    # crack pixel predicted 0.3: (200 * 0.7)^2 + (0 - 0.7)^2 + (0.3 + 0.7 - 1)^2
    assert asymmetric_binary_loss(_pair(0.3, 0.7), _pair(1.0, 0.0)).item() == pytest.approx(19600.49)
    # the sum-to-one term: p = (0.5, 0.6) on background: 100^2 + 0.4^2 + 0.1^2
    assert asymmetric_binary_loss(_pair(0.5, 0.6), _pair(0.0, 1.0)).item() == pytest.approx(10000.17, rel=1e-6)
    # means over pixels: half the pixels perfect halves the loss
    prob = torch.cat([_pair(0.3, 0.7, (1, 1, 1, 2)), _pair(1.0, 0.0, (1, 1, 1, 2))], dim=2)
    assert asymmetric_binary_loss(prob, _pair(1.0, 0.0)).item() == pytest.approx(19600.49 / 2)
    assert asymmetric_binary_loss(_pair(0.3, 0.7), _pair(1.0, 0.0), alpha=1.0).item() == pytest.approx(0.98)


def test_compute_map_loss_applies_temperature_before_softmax():
    logits = torch.zeros(1, 2, 2, 2)
    logits[:, 0] = 2.0  # crack logit 2, background 0
    t = 10.0
    p0 = 1 / (1 + math.exp(-2.0 / t))
    expected = (200 * (1 - p0)) ** 2 + (1 - p0) ** 2
    got = compute_map_loss("asymmetric", logits, _pair(1.0, 0.0), temperature=t)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_kl_is_zero_on_matching_targets_and_hand_value():
    logits = torch.randn(2, 2, 3, 3)
    target = torch.softmax(logits / 5.0, dim=1)
    assert two_channel_kl(logits, target, 5.0).item() == pytest.approx(0.0, abs=1e-6)
    # one-hot target at T=1 is the cross-entropy: -log(sigmoid(2)) for a crack logit margin of 2
    logits = torch.tensor([2.0, 0.0]).view(1, 2, 1, 1)
    assert two_channel_kl(logits, _pair(1.0, 0.0, (1, 1, 1, 1))).item() == pytest.approx(math.log(1 + math.exp(-2)))


def test_bce_dice_hand_value():
    logits = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)  # crack prob sigmoid(1)
    p = 1 / (1 + math.exp(-1))
    bce = -math.log(p)
    dice = 1 - (2 * p + 1) / (p + 1 + 1)
    assert bce_dice_loss(logits, _pair(1.0, 0.0, (1, 1, 1, 1))).item() == pytest.approx(bce + dice, rel=1e-6)
    assert soft_dice_loss(torch.ones(4), torch.ones(4)).item() == pytest.approx(0.0)


def test_two_channel_and_unknown_kind():
    p = torch.tensor([0.2]).view(1, 1, 1, 1)
    torch.testing.assert_close(two_channel(p).flatten(), torch.tensor([0.2, 0.8]))
    with pytest.raises(ValueError, match="not in"):
        compute_map_loss("focal", torch.zeros(1, 2, 1, 1), torch.zeros(1, 2, 1, 1))
