"""A run killed with SIGKILL mid-epoch and resumed ends with the same weights as an uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import torch
from tests.helpers.runs import PYTHON, seg_overrides, subprocess_env

from kdinspect.api import train
from kdinspect.config import load_config
from kdinspect.data.synthetic import ensure_synthetic
from kdinspect.engine.checkpoint import CheckpointError, load_checkpoint

HELPER = Path(__file__).resolve().parents[1] / "helpers" / "train_slow.py"
EXTRA = ["train.deterministic=true", "train.checkpoint_interval=1", "train.eval_interval=1"]


def _state(path: Path) -> dict | None:
    try:
        return load_checkpoint(path).state["trainer"]
    except (CheckpointError, KeyError):
        return None


def test_sigkill_mid_epoch_then_resume_is_bit_exact(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ensure_synthetic(data, "segmentation", n_train=16, n_val=8, seed=0, size=(64, 64))
    ref = train(load_config(None, seg_overrides(data, tmp_path, "ref", epochs=3, extra=EXTRA)), progress=False)

    ovr = seg_overrides(data, tmp_path, "killed", epochs=3, extra=EXTRA)
    proc = subprocess.Popen(
        [PYTHON, str(HELPER), *ovr], env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    last = tmp_path / "killed" / "last.safetensors"
    killed_at = None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        st = _state(last) if last.exists() else None
        if st and st["epoch"] == 1 and st["iter_in_epoch"] > 0:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed_at = st
            break
        time.sleep(0.05)
    assert killed_at is not None, f"run was not caught mid-epoch: {proc.poll()} {proc.stderr.read()[-2000:]!r}"
    assert proc.returncode == -signal.SIGKILL
    resumed_from = _state(last)
    assert resumed_from is not None and not resumed_from["finished"]
    assert 0 < resumed_from["iter_in_epoch"] < 4, resumed_from  # the checkpoint on disk is a mid-epoch one

    resumed = train(load_config(None, [*ovr, "train.resume=true"]), progress=False)
    a = load_checkpoint(ref.last)
    b = load_checkpoint(resumed.last)
    assert a.state["trainer"]["global_step"] == b.state["trainer"]["global_step"] == 12
    for k, v in a.model.items():
        assert torch.equal(v, b.model[k]), k
    assert no_tmp_files(tmp_path / "killed")


def no_tmp_files(folder: Path) -> bool:
    """A killed run may leave at most a stale temp file, never a broken checkpoint."""
    load_checkpoint(folder / "last.safetensors")
    return True
