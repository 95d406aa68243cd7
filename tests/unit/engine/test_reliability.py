"""Training on awkward batches: a one-image batch (corrupt file / last partial batch) and ``batch_size=1`` with
BatchNorm layers whose deepest feature map is 1x1 (tiny U-Net, depth 5, 32 px crops)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers.runs import seg_overrides

from kdinspect.api import train
from kdinspect.config import load_config
from kdinspect.data.synthetic import ensure_synthetic


def _cfg(tmp_path: Path, name: str, n_train: int, batch_size: int, corrupt: int | None = None):
    data = tmp_path / "data"
    ensure_synthetic(data, "segmentation", n_train=n_train, n_val=2, seed=0, size=(32, 32))
    bad = None
    if corrupt is not None:
        bad = sorted((data / "images" / "train").iterdir())[corrupt]
        bad.write_bytes(bad.read_bytes()[:100])  # truncated PNG
    extra = [
        f"data.params.n_train={n_train}",
        "data.params.n_val=2",
        "data.params.size=[32,32]",
        "model.params.width=2",
        "model.params.depth=5",  # 32 px -> 1x1 bottleneck: BatchNorm there needs 2+ images
        f"train.batch_size={batch_size}",
    ]
    return load_config(None, seg_overrides(data, tmp_path, name, epochs=1, extra=extra)), bad


def test_corrupt_file_leaving_one_image_is_dropped_and_named(tmp_path: Path) -> None:
    cfg, bad = _cfg(tmp_path, "corrupt1", n_train=6, batch_size=2, corrupt=2)
    res = train(cfg, progress=False)
    state = json.loads((res.run_dir / "results.json").read_text())["state"]
    assert state["skipped_files"] == 1
    assert state["dropped_images"] == 1
    log = (res.run_dir / "train.log").read_text()
    assert bad is not None and bad.name in log
    line = next(ln for ln in log.splitlines() if "dropped a one-image" in ln)
    assert ".png" in line  # the dropped image is named
    assert res.last.is_file()


def test_last_partial_batch_of_one_is_dropped(tmp_path: Path) -> None:
    cfg, _ = _cfg(tmp_path, "partial", n_train=3, batch_size=2)  # 3 < 2 * 2: no drop_last -> batches [2, 1]
    res = train(cfg, progress=False)
    state = json.loads((res.run_dir / "results.json").read_text())["state"]
    assert state["dropped_images"] == 1
    assert state["global_step"] == 2


def test_batch_size_one_with_batchnorm_gives_a_clear_error(tmp_path: Path) -> None:
    cfg, _ = _cfg(tmp_path, "bs1", n_train=2, batch_size=1)
    with pytest.raises(ValueError, match=r"train\.batch_size=1.*BatchNorm"):
        train(cfg, progress=False)
