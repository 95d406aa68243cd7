"""The smp U-Net peer: size, output contract, same loss as MCFF-L."""

from __future__ import annotations

import pytest
import torch

from kdinspect.data.structures import SegTarget
from kdinspect.models import build_model

pytest.importorskip("segmentation_models_pytorch")


def test_peer_size_contract_and_loss():
    torch.manual_seed(0)
    m = build_model("smp_unet", 1, {})
    assert 1_100_000 < sum(p.numel() for p in m.parameters()) < 1_250_000  # similar size to the 1.18 M student
    m.train()
    losses = m(torch.rand(2, 3, 64, 96), [SegTarget(torch.zeros(64, 96)), SegTarget(torch.ones(64, 96))])
    assert list(losses) == ["loss_seg"] and torch.isfinite(losses["loss_seg"])
    losses["loss_seg"].backward()
    m.eval()
    out = m(torch.rand(1, 3, 50, 70))  # not a multiple of 32: padded inside, cropped back
    assert out._fields == ("prob",) and out.prob.shape == (1, 1, 50, 70)
    assert float(out.prob.min()) >= 0.0 and float(out.prob.max()) <= 1.0
    with pytest.raises(ValueError, match="architecture"):
        build_model("smp_unet", 1, {"arch": "NoSuchNet"})
