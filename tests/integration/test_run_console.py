"""What a user sees in a run folder and on the console: numbered run folders, no folder after a config error, the
per-epoch validation table, the pictures (results.png, train_batch.png, P/R/F1 curves)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tests.helpers.runs import seg_overrides

from kdinspect.api import train
from kdinspect.config import load_config
from kdinspect.evaluation.report import metrics_table


def _cfg(tmp_path: Path, name: str = "r", extra: list[str] | None = None):
    return load_config(None, seg_overrides(tmp_path / "data", tmp_path / "runs", name, epochs=1, extra=extra))


def test_run_folders_increment_unless_resume_or_exist_ok(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = train(_cfg(tmp_path), progress=False)
    second = train(_cfg(tmp_path), progress=False)
    assert (first.run_dir.name, second.run_dir.name) == ("r", "r-2")
    assert load_config(second.run_dir / "config.yaml").train.name == "r-2"
    third = train(_cfg(tmp_path, extra=["train.exist_ok=true"]), progress=False)
    assert third.run_dir.name == "r" and "starting afresh" in caplog.text
    rows = (third.run_dir / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 2  # header + this run's one evaluation: the old run's rows were removed


def test_a_config_error_leaves_no_run_folder(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="unknown model"):
        train(_cfg(tmp_path, extra=["model.name=nonet"]), progress=False)
    assert not (tmp_path / "runs" / "r").exists()


def test_epoch_table_and_pictures(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kdinspect")
    result = train(_cfg(tmp_path, extra=["train.epochs=2", "train.eval_interval=1"]), progress=False)
    text = caplog.text
    assert "epoch 1/2 validation: main" in text and "epoch 2/2 validation: main" in text
    header = next(line for line in text.splitlines() if "ODS thr" in line)
    assert header.split()[-9:] == ["class", "images", "P", "R", "F1", "IoU", "ODS", "ODS", "thr"]
    assert "(epoch 0)" not in text  # epochs are numbered from 1, as in the progress bar and metrics.csv
    for name in ("results.png", "train_batch.png", "loss.png"):
        assert (result.run_dir / name).stat().st_size > 10_000, name


def test_detection_table_columns() -> None:
    metrics = {"images": 10, "instances": 7, "precision": 0.5, "recall": 0.25, "mAP50": 0.4, "mAP": 0.2,
               "instances_a": 7, "P_a": 0.5, "R_a": 0.25, "AP50_a": 0.4, "AP_a": 0.2}  # fmt: skip
    lines = metrics_table(metrics, ["a", "b"], "detection")
    assert lines[0].split() == ["class", "images", "instances", "P", "R", "mAP50", "mAP50-95"]
    assert lines[1].split() == ["all", "10", "7", "0.500", "0.250", "0.400", "0.200"]
    assert lines[2].split() == ["a", "10", "7", "0.500", "0.250", "0.400", "0.200"]
    assert len(lines) == 3  # class b has no ground truth: no row
