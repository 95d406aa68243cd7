"""DDP with a one-image batch on one process only (the rest of it unreadable): every process skips that step together
instead of one skipping alone and the other waiting forever in the gradient all-reduce."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

from tests.helpers.runs import PYTHON, seg_overrides, subprocess_env

from kdinspect.data.synthetic import ensure_synthetic


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_one_image_batch_on_one_process_skips_the_step_everywhere(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ensure_synthetic(data, "segmentation", n_train=8, n_val=2, seed=0, size=(32, 32))
    bad = sorted((data / "images" / "train").iterdir())[5]
    bad.write_bytes(bad.read_bytes()[:100])  # truncated PNG: its batch keeps one image, on one process
    extra = [
        "data.params.n_train=8",
        "data.params.n_val=2",
        "data.params.size=[32,32]",
        "model.params.width=2",
        "model.params.depth=5",  # BatchNorm (the default norm) at a 1x1 bottleneck
        "train.batch_size=2",  # per process: 8 images / 2 processes / 2 = 2 steps
    ]
    ovr = seg_overrides(data, tmp_path, "ddp", epochs=1, extra=extra)
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
        *[f"--set={o}" for o in ovr],
    ]
    try:
        proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as err:
        raise AssertionError("the DDP run hung on a one-image batch of one process") from err
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((tmp_path / "ddp" / "results.json").read_text())["state"]
    assert state["global_step"] == 2
    assert state["dropped_images"] in (1, 2)  # the lone image, or this process's two images of that step
    assert "dropped" in (tmp_path / "ddp" / "train.log").read_text()
