"""benchmarks.common.results: the one results writer (provenance head, atomic JSON + markdown, dirty tree refused
unless KDINSPECT_ALLOW_DIRTY=1)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from benchmarks.common.results import command_line, provenance, write_results


def _repo(tmp: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp)], check=True)
    (tmp / "a.txt").write_text("1")
    git = ["git", "-C", str(tmp), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "a"], check=True)
    return tmp


def _md(doc: dict) -> str:
    return f"# x\n\nfigure {doc['figure']}\n"


def test_writes_json_and_markdown_with_the_provenance_head(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KDINSPECT_ALLOW_DIRTY", raising=False)
    repo = _repo(tmp_path)
    doc = {**provenance("benchmarks.x", ["--y", "a b"], repo=repo), "figure": 2}
    out = write_results("x", doc, _md, time.time(), repo=repo)
    saved = json.loads(out.read_text())
    assert out == repo / "benchmarks" / "results" / "x.json"
    assert saved["command"] == "python -m benchmarks.x --y 'a b'"
    assert len(saved["git_commit"]) == 40 and "packages" in saved["environment"]
    assert saved["wall_s"] >= 0 and saved["peak_rss_mb"] > 0 and saved["figure"] == 2
    assert out.with_suffix(".md").read_text() == "# x\n\nfigure 2\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.json", "x.md"]  # no temporary files left


def test_dirty_tree_is_refused_unless_allowed(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KDINSPECT_ALLOW_DIRTY", raising=False)
    repo = _repo(tmp_path)
    doc = {**provenance("benchmarks.x", [], repo=repo), "figure": 1}
    out = write_results("x", doc, _md, repo=repo)
    (repo / "a.txt").write_text("2")  # an uncommitted change to a tracked file
    with pytest.raises(SystemExit, match="uncommitted changes"):
        provenance("benchmarks.x", [], repo=repo)
    with pytest.raises(SystemExit, match="uncommitted changes"):
        write_results("x", doc | {"figure": 9}, _md, repo=repo)
    assert json.loads(out.read_text())["figure"] == 1  # refused: the committed file is untouched
    monkeypatch.setenv("KDINSPECT_ALLOW_DIRTY", "1")
    write_results("x", doc | {"figure": 9}, _md, repo=repo)
    assert json.loads(out.read_text())["git_commit"].endswith("+dirty")


def test_dry_runs_outside_the_results_folder_record_a_dirty_tree(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KDINSPECT_ALLOW_DIRTY", raising=False)
    repo = _repo(tmp_path / "repo")
    (repo / "a.txt").write_text("2")
    doc = {**provenance("benchmarks.x", [], repo=repo, check=False), "figure": 1}
    out = write_results("x", doc, _md, repo=repo, out_dir=tmp_path / "work")
    assert json.loads(out.read_text())["git_commit"].endswith("+dirty")


def test_a_failing_render_leaves_the_previous_files(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KDINSPECT_ALLOW_DIRTY", raising=False)
    repo = _repo(tmp_path)
    doc = {**provenance("benchmarks.x", [], repo=repo), "figure": 1}
    out = write_results("x", doc, _md, repo=repo)

    def broken(_doc: dict) -> str:
        raise KeyError("figure_missing")

    with pytest.raises(KeyError):
        write_results("x", doc | {"figure": 5}, broken, repo=repo)
    assert json.loads(out.read_text())["figure"] == 1 and out.with_suffix(".md").read_text() == "# x\n\nfigure 1\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.json", "x.md"]


def test_a_document_without_provenance_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="provenance"):
        write_results("x", {"figure": 1}, _md, repo=tmp_path)
    assert not (tmp_path / "benchmarks").exists()


def test_command_line_is_the_module_form() -> None:
    assert command_line("benchmarks.hsd", ["--dataset", "neu-det"]) == "python -m benchmarks.hsd --dataset neu-det"
