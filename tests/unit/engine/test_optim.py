import pytest
import torch

from kdinspect.config import TrainConfig
from kdinspect.engine.optim import LRSchedule, build_optimizer


def _opt(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def test_warmup_then_steps() -> None:
    opt = _opt()
    s = LRSchedule(
        opt, "step", iters_per_epoch=10, total_iters=100, milestones=[3, 6], gamma=0.1, warmup_iters=5, warmup_ratio=0.0
    )
    lrs = []
    for step in range(70):
        s.step(step)
        lrs.append(s.lr)
    assert lrs[0] == 0.0 and lrs[4] == pytest.approx(0.8) and lrs[5] == 1.0
    assert lrs[29] == 1.0 and lrs[30] == pytest.approx(0.1) and lrs[60] == pytest.approx(0.01)


def test_cosine_ends_near_zero() -> None:
    opt = _opt()
    s = LRSchedule(opt, "cosine", iters_per_epoch=10, total_iters=100)
    s.step(50)
    assert s.lr == pytest.approx(0.5)
    s.step(100)
    assert s.lr == pytest.approx(0.0, abs=1e-12)


def test_plateau_decays_and_round_trips() -> None:
    opt = _opt()
    s = LRSchedule(opt, "plateau", gamma=0.5, patience=1)
    for v in [0.5, 0.4, 0.4]:
        s.on_eval(v)
    s.step(0)
    assert s.lr == pytest.approx(0.5)
    s2 = LRSchedule(_opt(), "plateau", gamma=0.5, patience=1)
    s2.load_state_dict(s.state_dict())
    s2.step(0)
    assert s2.lr == pytest.approx(0.5)


def test_unknown_names() -> None:
    with pytest.raises(ValueError, match="scheduler"):
        LRSchedule(_opt(), "linear")
    with pytest.raises(ValueError, match="optimizer"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1))], TrainConfig(optimizer="lamb"))


def test_rmsprop_keras_defaults() -> None:
    opt = build_optimizer(torch.nn.Linear(2, 2), TrainConfig(optimizer="rmsprop", lr=5e-5))
    g = opt.param_groups[0]
    assert isinstance(opt, torch.optim.RMSprop) and g["alpha"] == 0.9 and g["eps"] == 1e-7


def test_warmup_is_capped_at_a_fraction_of_a_short_run() -> None:
    from kdinspect.engine.optim import capped_warmup

    assert capped_warmup(300, 1440, 0.25) == 300  # a full recipe keeps its warm-up
    assert capped_warmup(300, 378, 0.25) == 94  # 6 short epochs: at most a quarter of the run
    assert capped_warmup(300, 378, 0.0) == 300  # 0 = no cap (reproduces the older recipes)
    assert capped_warmup(50, 2, 0.25) == 1
