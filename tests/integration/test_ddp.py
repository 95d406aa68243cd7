"""torchrun with 2 CPU processes (gloo) matches one process with the same global batch."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import torch
from tests.helpers.runs import PYTHON, seg_overrides, subprocess_env

from kdinspect.api import train
from kdinspect.config import load_config
from kdinspect.data.synthetic import ensure_synthetic
from kdinspect.engine.checkpoint import load_checkpoint

# GroupNorm and BCE only: BatchNorm statistics and Dice are per-process quantities and would differ legitimately.
EXTRA = ["model.params.norm=gn", "model.params.dice_weight=0.0", "train.eval_interval=0", "train.deterministic=true"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes_match_single(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ensure_synthetic(data, "segmentation", n_train=16, n_val=8, seed=0, size=(64, 64))
    single = seg_overrides(data, tmp_path, "single", epochs=2, extra=[*EXTRA, "train.batch_size=8"])
    ref = train(load_config(None, single), progress=False)

    ddp = seg_overrides(data, tmp_path, "ddp", epochs=2, extra=[*EXTRA, "train.batch_size=4"])
    cmd = [
        PYTHON,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        "-m",
        "kdinspect",
        "train",
        "--no-progress",
        *[f"--set={o}" for o in ddp],
    ]
    proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    a, b = load_checkpoint(ref.last), load_checkpoint(tmp_path / "ddp" / "last.safetensors")
    assert a.state["trainer"]["global_step"] == b.state["trainer"]["global_step"] == 4
    for k, v in a.model.items():
        torch.testing.assert_close(b.model[k], v, rtol=1e-4, atol=1e-5, msg=k)
