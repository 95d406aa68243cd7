"""EMA of the weights: ramped decay math, swap for evaluation, checkpoints with an ``ema.*`` group."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from kdinspect.config import RunConfig, apply_overrides
from kdinspect.engine.checkpoint import load_checkpoint, load_model, save_checkpoint
from kdinspect.engine.ema import ModelEMA, ema_decay_at
from kdinspect.models import build_model


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    return model


def _set(model: nn.Module, w: float, mean: float) -> None:
    with torch.no_grad():
        model[0].weight.fill_(w)
        model[1].running_mean.fill_(mean)
        model[1].num_batches_tracked.add_(1)


def test_ramped_decay_by_hand() -> None:
    model = _tiny()
    ema = ModelEMA(model, decay=0.9, tau=1)
    _set(model, 2.0, 10.0)
    ema.update(model)  # update 1 copies
    assert ema.updates == 1 and float(ema.module[0].weight) == 2.0 and float(ema.module[1].running_mean) == 10.0
    _set(model, 4.0, 0.0)
    ema.update(model)  # update 2: d = 0.9 * (1 - e^-2) = 0.778198
    d2 = 0.9 * (1 - math.exp(-2))
    assert d2 == pytest.approx(0.778198, abs=1e-6)
    assert float(ema.module[0].weight) == pytest.approx(2.0 * d2 + 4.0 * (1 - d2), rel=1e-6)  # 2.443603
    assert float(ema.module[0].weight) == pytest.approx(2.443603, abs=1e-5)
    assert float(ema.module[1].running_mean) == pytest.approx(10.0 * d2, rel=1e-6)  # buffers are averaged too
    _set(model, 0.0, 0.0)
    ema.update(model)  # update 3: d = 0.9 * (1 - e^-3) = 0.855194
    assert float(ema.module[0].weight) == pytest.approx(2.443603 * 0.9 * (1 - math.exp(-3)), abs=1e-5)  # 2.089753
    assert int(ema.module[1].num_batches_tracked) == int(model[1].num_batches_tracked) == 3  # integers are copied
    assert ema.updates == 3
    assert float(model[0].weight.detach()) == 0.0  # the source model is never written


def test_decay_ramp_and_constant() -> None:
    assert ema_decay_at(2000, 0.9999, 2000) == pytest.approx(0.9999 * (1 - math.exp(-1)))
    assert ema_decay_at(10**6, 0.9999, 2000) == pytest.approx(0.9999)
    assert ema_decay_at(1, 0.5, 0) == 0.5
    model = _tiny()
    ema = ModelEMA(model, decay=0.5, tau=0)
    ema.update(model)
    _set(model, 3.0, 0.0)
    ema.update(model)
    assert float(ema.module[0].weight) == pytest.approx(2.0)  # 0.5 * 1 + 0.5 * 3
    with pytest.raises(ValueError, match="ema_decay"):
        ModelEMA(model, decay=1.5)


def test_swapped_into_restores_raw_weights_exactly() -> None:
    model = _tiny()
    ema = ModelEMA(model, decay=0.9, tau=1)
    ema.update(model)
    _set(model, 7.25, 1.5)
    raw = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError), ema.swapped_into(model):
        assert float(model[0].weight.detach()) == 1.0  # the EMA weights while inside
        raise RuntimeError("evaluation failed")
    for k, v in model.state_dict().items():
        assert torch.equal(v, raw[k]), k


def _cfg() -> RunConfig:
    return apply_overrides(RunConfig(), ["model.name=unet", "model.params.width=4", "model.params.depth=2"])


def test_checkpoint_with_ema_loads_the_ema_weights(tmp_path: Path) -> None:
    cfg = _cfg()
    model = build_model("unet", 1, cfg.model.params)
    ema = ModelEMA(model, decay=0.5, tau=0)
    ema.update(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    path = save_checkpoint(
        tmp_path / "last.safetensors",
        model,
        cfg,
        ["crack"],
        "segmentation",
        ema_state=ema.state_tensors(),
        ema_updates=ema.updates,
    )
    ckpt = load_checkpoint(path)
    assert ckpt.ema_updates == 2 and set(ckpt.ema) == set(ckpt.model)
    for k, v in model.state_dict().items():
        assert torch.equal(ckpt.model[k], v), k  # raw weights kept for resume
    loaded = load_model(path)
    name, param = next(iter(loaded.model.named_parameters()))
    assert torch.equal(param, ema.module.state_dict()[name])
    assert not torch.equal(param, model.state_dict()[name])
    # a file without EMA weights loads its model weights as before
    plain = save_checkpoint(tmp_path / "plain.safetensors", model, cfg, ["crack"], "segmentation")
    assert load_checkpoint(plain).ema == {}
    assert torch.equal(dict(load_model(plain).model.named_parameters())[name], model.state_dict()[name])
