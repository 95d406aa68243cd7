"""Shared settings for small end-to-end runs on generated data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def seg_overrides(
    data_root: Path, out_dir: Path, name: str, epochs: int = 2, extra: list[str] | None = None
) -> list[str]:
    """A tiny segmentation run on synthetic cracks: 16 train / 8 val images of 64x64, U-Net width 4."""
    return [
        "task=segmentation",
        "data.format=synthetic-seg",
        f"data.root={data_root}",
        "data.params.n_train=16",
        "data.params.n_val=8",
        "data.params.size=[64,64]",
        "data.imgsz=32",
        "model.name=unet",
        "model.params.width=4",
        "model.params.depth=2",
        f"train.epochs={epochs}",
        "train.batch_size=4",
        "train.optimizer=sgd",
        "train.lr=0.05",
        "train.scheduler=none",
        "train.threads=1",
        f"train.out_dir={out_dir}",
        f"train.name={name}",
        *(extra or []),
    ]


def subprocess_env() -> dict[str, str]:
    """Environment for child processes: kdinspect importable from this checkout, one thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    return env


PYTHON = sys.executable
