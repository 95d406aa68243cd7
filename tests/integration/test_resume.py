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
    stale = set(tmp_files(tmp_path / "killed"))  # a kill during a write may leave one; the resumed run adds none
    resumed_from = _state(last)
    assert resumed_from is not None and not resumed_from["finished"]
    assert 0 < resumed_from["iter_in_epoch"] < 4, resumed_from  # the checkpoint on disk is a mid-epoch one

    resumed = train(load_config(None, [*ovr, "train.resume=true"]), progress=False)
    a = load_checkpoint(ref.last)
    b = load_checkpoint(resumed.last)
    assert a.state["trainer"]["global_step"] == b.state["trainer"]["global_step"] == 12
    for k, v in a.model.items():
        assert torch.equal(v, b.model[k]), k
    assert tmp_files(tmp_path / "ref") == []
    assert len(stale) <= 1, stale
    assert set(tmp_files(tmp_path / "killed")) <= stale, tmp_files(tmp_path / "killed")
    assert_checkpoints_load(tmp_path / "killed")


def tmp_files(folder: Path) -> list[str]:
    """Temporary files of the atomic writes (``utils.io.atomic_path``: ``.<name>.<random>.tmp``) under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.tmp"))


def assert_checkpoints_load(folder: Path) -> None:
    """Every checkpoint in ``folder`` is a whole one: it loads, with its trainer state."""
    names = sorted(p.name for p in folder.glob("*.safetensors"))
    assert "last.safetensors" in names, names
    for name in names:
        assert _state(folder / name) is not None, name


def test_resume_removes_the_stale_temp_file_of_a_killed_write(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ensure_synthetic(data, "segmentation", n_train=16, n_val=8, seed=0, size=(64, 64))
    first = train(load_config(None, seg_overrides(data, tmp_path, "run", epochs=1)), progress=False)
    stale = first.run_dir / ".last.safetensors.k1ll3d00.tmp"  # what a SIGKILL inside atomic_path leaves
    stale.write_bytes(b"half a checkpoint")
    resumed = train(
        load_config(None, [*seg_overrides(data, tmp_path, "run", epochs=2), "train.resume=true"]),
        progress=False,
        allow_change=True,  # one more epoch than the stored run
    )
    assert load_checkpoint(resumed.last).state["trainer"]["global_step"] == 8
    assert tmp_files(first.run_dir) == [], tmp_files(first.run_dir)
