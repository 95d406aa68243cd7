"""benchmarks/ is a package run as ``python -m benchmarks.<name>``: no sys.path edits, one ONNX Runtime session
factory and one FLOPs counter (benchmarks.common.measure), and every benchmark's --help works."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.common import REPO
from tests.helpers.runs import subprocess_env

SOURCES = sorted((REPO / "benchmarks").rglob("*.py"))
MAINS = ("data_pipeline", "deploy", "deploy_seg_peer", "dkan", "dkan_profile", "dkan_switch", "hsd", "hsd_yolo",
         "mcff", "mcff_devdata", "mcff_measure", "readme_tables", "template_deeppcb")  # fmt: skip


def _uses(pattern: str) -> list[str]:
    return [str(p.relative_to(REPO)) for p in SOURCES if re.search(pattern, p.read_text())]


def test_no_sys_path_manipulation() -> None:
    tests = sorted((REPO / "tests" / "unit" / "benchmarks").glob("*.py"))
    offenders = [str(p.relative_to(REPO)) for p in [*SOURCES, *tests] if "sys.path" in p.read_text()]
    assert offenders == [str(Path(__file__).relative_to(REPO))]  # this test's own pattern only


def test_one_latency_session_and_one_flops_counter() -> None:
    assert _uses(r"InferenceSession\(") == ["benchmarks/common/measure.py"]
    assert _uses(r"FlopCounterMode\(") == ["benchmarks/common/measure.py"]
    assert _uses(r"subprocess\.Popen\(") == ["benchmarks/common/jobs.py"]
    assert _uses(r"default_rng|np\.random") == []  # latency inputs are real test images everywhere


def test_every_benchmark_module_has_a_module_main_with_help(capsys) -> None:
    assert sorted(MAINS) == sorted(p.stem for p in SOURCES if "def main(" in p.read_text())
    for name in MAINS:
        module = importlib.import_module(f"benchmarks.{name}")
        with pytest.raises(SystemExit) as exit_info:
            module.main(["--help"])
        assert exit_info.value.code == 0, name
        out = capsys.readouterr().out
        assert "usage:" in out, name
        assert name == "readme_tables" or f"usage: python -m benchmarks.{name}" in out, name


def test_runs_as_a_module_from_the_repo_root() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "benchmarks.readme_tables", "--help"],  # the one benchmark that imports no torch
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "python -m benchmarks.readme_tables --write" in res.stdout
