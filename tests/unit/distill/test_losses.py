import math

import pytest
import torch

from kdinspect.distill.losses import channel_wise_divergence, feature_mse, kd_kl
from kdinspect.distill.taps import FeatureTaps
from kdinspect.losses.functional import binary_kd_loss, dice_loss


def test_kd_kl_zero_for_identical_and_hand_value() -> None:
    z = torch.randn(4, 5)
    assert kd_kl(z, z, 3.0).item() == pytest.approx(0.0, abs=1e-6)
    s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]])  # p_t = (0.75, 0.25), p_s = (0.5, 0.5)
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert kd_kl(s, t, 1.0).item() == pytest.approx(expected, rel=1e-5)
    assert kd_kl(s * 2, t * 2, 2.0).item() == pytest.approx(4 * expected, rel=1e-5)


def test_cwd_zero_and_hand_value() -> None:
    f = torch.randn(2, 3, 4, 4)
    assert channel_wise_divergence(f, f, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    s = torch.zeros(1, 1, 1, 2)
    t = torch.tensor([[[[math.log(3.0), 0.0]]]])
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert channel_wise_divergence(s, t, 1.0).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="equal shapes"):
        channel_wise_divergence(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2))


def test_feature_mse_and_binary_kd() -> None:
    a = torch.randn(2, 4)
    assert feature_mse(a, a).item() == 0.0
    z = torch.randn(1, 1, 3, 3)
    assert binary_kd_loss(z, z, 4.0).item() == pytest.approx(0.0, abs=1e-6)
    assert binary_kd_loss(z, z + 1, 1.0).item() > 0


def test_dice_perfect() -> None:
    target = torch.zeros(1, 1, 4, 4)
    target[..., :2, :2] = 1
    logits = (target * 2 - 1) * 50
    assert dice_loss(logits, target).item() == pytest.approx(0.0, abs=1e-3)


def test_feature_taps_records_and_detaches_hooks() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    taps = FeatureTaps(net, ["0", "2"])
    with taps:
        net(torch.ones(1, 2))
    assert taps.outputs["0"].shape == (1, 3) and taps.outputs["2"].shape == (1, 1)
    assert not net[0]._forward_hooks
    with pytest.raises(KeyError, match="no submodule"):
        FeatureTaps(net, ["neck"])
