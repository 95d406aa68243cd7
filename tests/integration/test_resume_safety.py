"""The run folder stays honest across a resume: changed settings are refused (or recorded), stale temp files of a
killed write are removed, and results.json says which unreadable files were met where."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml
from tests.helpers.runs import seg_overrides

from kdinspect.api import train
from kdinspect.config import load_config
from kdinspect.data.synthetic import ensure_synthetic


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    ensure_synthetic(data, "segmentation", n_train=8, n_val=2, seed=0, size=(32, 32))
    return data


def _cfg(data: Path, out: Path, extra: list[str] | None = None):
    small = ["data.params.n_train=8", "data.params.n_val=2", "data.params.size=[32,32]", "model.params.width=2"]
    return load_config(None, seg_overrides(data, out, "run", epochs=1, extra=[*small, *(extra or [])]))


def test_resume_refuses_a_changed_config_and_keeps_config_yaml(tmp_path: Path) -> None:
    data = _data(tmp_path)
    first = train(_cfg(data, tmp_path), progress=False)
    before = (first.run_dir / "config.yaml").read_text()
    with pytest.raises(ValueError, match=r"train\.epochs: 1 -> 2.*train\.lr: 0\.05 -> 0\.01.*--allow-change") as err:
        train(_cfg(data, tmp_path, ["train.resume=true", "train.epochs=2", "train.lr=0.01"]), progress=False)
    assert str(first.run_dir) in str(err.value)
    assert (first.run_dir / "config.yaml").read_text() == before
    # settings of the machine, not of the training, may change on resume
    train(_cfg(data, tmp_path, ["train.resume=true", "train.threads=2", "data.workers=0"]), progress=False)


def test_resume_with_allow_change_records_the_change(tmp_path: Path) -> None:
    data = _data(tmp_path)
    first = train(_cfg(data, tmp_path), progress=False)
    res = train(_cfg(data, tmp_path, ["train.resume=true", "train.epochs=2"]), progress=False, allow_change=True)
    changes = json.loads((res.run_dir / "resume_changes.json").read_text())
    assert len(changes) == 1
    assert changes[0]["changes"] == {"train.epochs": [1, 2]}
    assert changes[0]["resumed_at_step"] == 2  # 8 images / batch 4, one epoch
    assert yaml.safe_load((first.run_dir / "config.yaml").read_text())["train"]["epochs"] == 2
    assert json.loads((res.run_dir / "results.json").read_text())["state"]["epoch"] == 2


def test_resume_removes_stale_temp_files_of_a_killed_write(tmp_path: Path) -> None:
    data = _data(tmp_path)
    first = train(_cfg(data, tmp_path), progress=False)
    # what atomic_path leaves behind when the process is SIGKILLed mid-write
    stale = [
        Path(tempfile.mkstemp(prefix=".last.safetensors.", suffix=".tmp", dir=first.run_dir)[1]),
        Path(tempfile.mkstemp(prefix=".metrics.json.", suffix=".tmp", dir=first.run_dir / "eval")[1]),
    ]
    keep = first.run_dir / "notes.tmp"  # not ours: left alone
    keep.write_text("mine")
    res = train(_cfg(data, tmp_path, ["train.resume=true"]), progress=False)
    assert not any(p.exists() for p in stale)
    assert keep.exists()
    log = (res.run_dir / "train.log").read_text()
    assert stale[0].name in log and "stale" in log


def test_results_json_separates_training_and_evaluation_skips(tmp_path: Path) -> None:
    data = _data(tmp_path)
    bad = sorted((data / "images" / "train").iterdir())[1]
    bad.write_bytes(bad.read_bytes()[:100])  # truncated PNG
    res = train(_cfg(data, tmp_path, ["train.epochs=2"]), progress=False)
    results = json.loads((res.run_dir / "results.json").read_text())
    assert "skipped_files" not in results["metrics"]  # was 0 there (the validation count) next to 2 in state
    skipped = results["skipped_files"]
    assert skipped["train"] == [str(bad)]
    assert skipped["train_reads"] == 2 == results["state"]["skipped_files"]  # met once per epoch
    assert skipped["eval"] == 0  # unreadable validation files in the final evaluation
    assert skipped["dropped_images"] == 0


def test_demo_refuses_to_reuse_a_folder_trained_with_other_settings(tmp_path: Path) -> None:
    from kdinspect.demo import run_demo
    from kdinspect.engine.resume import ResumeConfigError

    out = tmp_path / "demo"
    other = _cfg(_data(tmp_path), out, ["train.name=seg_0_teacher"])  # the demo's first step, other settings
    train(other, progress=False)
    before = (out / "seg_0_teacher" / "config.yaml").read_text()
    with pytest.raises(ResumeConfigError, match=r"choose another --out"):
        run_demo(out, epochs=1, threads=1)
    assert (out / "seg_0_teacher" / "config.yaml").read_text() == before
