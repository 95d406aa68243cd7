"""Training with ``train.ema``: evaluation and best.safetensors use the EMA weights, and a run that crashes mid-epoch
and is resumed ends bit-exactly like an uninterrupted one (raw and EMA weights, update count)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.helpers.runs import seg_overrides

from kdinspect.api import train
from kdinspect.config import load_config
from kdinspect.data.synthetic import ensure_synthetic
from kdinspect.engine.checkpoint import load_checkpoint, load_model
from kdinspect.engine.trainer import Callback, Trainer

EXTRA = [
    "train.deterministic=true",
    "train.checkpoint_interval=1",
    "train.eval_interval=1",
    "train.ema=true",
    "train.ema_decay=0.9",
    "train.ema_tau=2",
]


class _Crash(Callback):
    """Raise at the end of step ``at`` (after the checkpoint of that step was written)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, trainer: Trainer, losses: dict[str, float]) -> None:
        if trainer.state.global_step == self.at:
            raise KeyboardInterrupt(f"crash at step {self.at}")


def test_ema_run_resumes_bit_exactly_and_deploys_the_ema(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ensure_synthetic(data, "segmentation", n_train=16, n_val=8, seed=0, size=(64, 64))
    ref = train(load_config(None, seg_overrides(data, tmp_path, "ref", epochs=2, extra=EXTRA)), progress=False)
    last = load_checkpoint(ref.last)
    assert last.ema_updates == 8 and set(last.ema) == set(last.model)
    assert any(not torch.equal(last.ema[k], last.model[k]) for k in last.model)  # the EMA is not the raw weights
    best = load_checkpoint(ref.best)
    assert best.ema == {}
    for k, v in last.ema.items():  # best = final evaluation (bad_evals 0) or not: both hold EMA weights
        if best.state["trainer"]["global_step"] == 8:
            assert torch.equal(best.model[k], v), k
    deployed = load_model(ref.last).model.state_dict()
    for k, v in last.ema.items():
        assert torch.equal(deployed[k], v), k

    ovr = seg_overrides(data, tmp_path, "crashed", epochs=2, extra=EXTRA)
    with pytest.raises(KeyboardInterrupt):
        train(load_config(None, ovr), callbacks=[_Crash(6)], progress=False)
    mid = load_checkpoint(tmp_path / "crashed" / "last.safetensors")
    assert mid.state["trainer"]["global_step"] == 6 and mid.ema_updates == 6
    resumed = train(load_config(None, [*ovr, "train.resume=true"]), progress=False)
    b = load_checkpoint(resumed.last)
    assert b.state["trainer"]["global_step"] == 8 and b.ema_updates == 8
    for group in ("model", "ema"):
        for k, v in getattr(last, group).items():
            assert torch.equal(v, getattr(b, group)[k]), f"{group}.{k}"
    assert resumed.metrics["main"] == ref.metrics["main"]


def test_ema_of_a_distilled_student_holds_the_student_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ensure_synthetic(data, "segmentation", n_train=16, n_val=8, seed=0, size=(64, 64))
    teacher = train(load_config(None, seg_overrides(data, tmp_path, "teacher", epochs=1)), progress=False)
    extra = ["train.ema=true", "train.ema_tau=2", f"distill.teacher={teacher.best}", "model.params.width=2"]
    student = train(load_config(None, seg_overrides(data, tmp_path, "student", epochs=1, extra=extra)), progress=False)
    last = load_checkpoint(student.last)
    assert last.ema_updates == 4 and set(last.ema) == set(last.model)
    widths = {k: v.shape for k, v in load_checkpoint(teacher.best).model.items()}
    assert any(widths[k] != v.shape for k, v in last.ema.items())  # the student's (narrower) weights, not the teacher's
    assert set(load_model(student.best).model.state_dict()) == set(last.model)
