"""The README's headline table and docs/results.md are renderings of the committed results files."""

from __future__ import annotations

from pathlib import Path

from benchmarks import readme_tables

REPO = Path(__file__).resolve().parents[3]


def test_results_doc_is_the_rendering_of_the_committed_results() -> None:
    assert (REPO / "docs" / "results.md").read_text() == readme_tables.render_results_doc() + "\n"


def test_headline_marks_what_its_files_cannot_show() -> None:
    block = readme_tables.render()
    assert block.count("| teacher") + block.count("| teacher (") >= 3  # a teacher row per system block
    assert "row copied from hsd_deeppcb" in block  # DeepPCB-lite's teacher row
    assert "carried over from a lost base model" in block  # DKAN's carried-over rows
    assert "not fully reproduced by its command" in block and "written from a dirty tree" in block
    assert "inside the seed std" in block  # DeepPCB-lite's +0.014 is no measurable difference
    assert "not the peer at its own recipe" in block and "a fraction of Ultralytics' recipe" in block
    doc = readme_tables.render_results_doc()
    for stem in readme_tables.HAND_MADE:
        assert f"[{stem}](../benchmarks/results/{stem}.md)" in doc


def test_dirty_tree_is_refused(monkeypatch, tmp_path: Path) -> None:
    import subprocess

    import pytest

    from kdinspect.utils.env import require_clean_tree

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "a.txt").write_text("1")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "a"], check=True)
    monkeypatch.delenv("KDINSPECT_ALLOW_DIRTY", raising=False)
    assert not require_clean_tree(tmp_path).endswith("+dirty")
    (tmp_path / "a.txt").write_text("2")
    with pytest.raises(SystemExit, match="uncommitted changes"):
        require_clean_tree(tmp_path)
    monkeypatch.setenv("KDINSPECT_ALLOW_DIRTY", "1")
    assert require_clean_tree(tmp_path).endswith("+dirty")
