"""A corrupt image met during training is reported by name, skipped and counted; training goes on."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.helpers.runs import seg_overrides

from kdinspect.api import train
from kdinspect.config import load_config
from kdinspect.data.synthetic import ensure_synthetic


def test_corrupt_training_image_is_skipped_and_counted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ensure_synthetic(data, "segmentation", n_train=16, n_val=8, seed=0, size=(64, 64))
    bad = sorted((data / "images" / "train").iterdir())[3]
    bad.write_bytes(bad.read_bytes()[:100])  # truncated PNG
    res = train(load_config(None, seg_overrides(data, tmp_path, "corrupt", epochs=2)), progress=False)
    rows = list(csv.DictReader((res.run_dir / "metrics.csv").open()))
    assert float(rows[-1]["skipped_files"]) >= 1  # seen at least once (drop_last may leave it out of an epoch)
    log = (res.run_dir / "train.log").read_text()
    assert bad.name in log and "skipped" in log
    assert res.last.is_file()
