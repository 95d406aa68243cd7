"""benchmarks/mcff.py --rows / --name, and the segmenter-vs-YOLO11n-seg reports with several of our checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import deploy_seg_peer, mcff, readme_tables


def test_rows_select_jobs_and_skip_unneeded_soft_labels(tmp_path: Path) -> None:
    args = mcff._parser().parse_args(["--dataset", "deepcrack", "--rows", "student_lite", "peer_unet", "--name", "x"])
    jobs = mcff._jobs("deepcrack", tmp_path, mcff._rows(args), [], "")
    assert [j.name for j in jobs] == ["deepcrack_student_lite", "deepcrack_peer_unet"]
    assert all(not j.after for j in jobs)
    assert "configs/mcff/deepcrack_student_lite.yaml" in jobs[0].cmd and mcff._name(args) == "x"
    kd = mcff._jobs("deepcrack", tmp_path, ["student_kd_standard"], [], "")
    assert sorted(j.name for j in kd) == [
        "deepcrack_softlabels_0",
        "deepcrack_softlabels_1",
        "deepcrack_student_kd_standard",
    ]
    full = mcff._parser().parse_args(["--dataset", "crackforest"])
    assert mcff._rows(full) == list(mcff.ROWS) and mcff._name(full) == "mcff_crackforest"
    assert mcff._rows(full, trained=False)[-1] == "student_kd_online"  # reports every finished row
    with pytest.raises(SystemExit):
        mcff._parser().parse_args(["--dataset", "deepcrack", "--rows", "nope"])


def _ours(model: str, ms: float, gflops: float) -> dict:
    e2e = {
        f"{k}_{t}t": {"median_ms": ms * f / t} for k, f in (("onnx_fp32", 1.0), ("openvino_bf16", 0.9)) for t in (1, 2)
    }
    check = {"metric_check": {"pytorch": 0.7, "onnx": 0.7, "images": 4}}
    return {"model": model, "params": 10, "gflops": gflops, "checkpoint": f"{model}.st", "export_check": check,
            "e2e_per_frame": e2e}  # fmt: skip


def test_seg_peer_reports_every_checkpoint_beside_the_same_peer() -> None:
    peer = {f"e2e_same_pipeline_{t}t": {"median_ms": 60.0 / t} for t in (1, 2)}
    peer |= {f"ort_{t}t": {"batch1": {"median_ms": 50.0 / t}} for t in (1, 2)}
    peer |= {"instances_per_frame_1t": 0.0, "instances_per_frame_2t": 0.0, "init": "random", "size_mb": 11.0}
    peer |= {"gflops": 4.9, "e2e_ultralytics_predict_plot": {"median_ms": 70.0}}
    doc = {"command": "cmd", "git_commit": "abc", "environment": {"cpu": "X"}, "threads": [1, 2], "input_size": [8, 8],
           "wall_s": 1.0, "peak_rss_mb": 1.0, "yolo11n_seg": peer,
           "ours": [_ours("mcff_student", 1000.0, 66.6), _ours("mcff_student_lite", 50.0, 2.8)]}  # fmt: skip
    md = deploy_seg_peer._markdown(doc)
    assert "| 1 | mcff_student_lite onnx_fp32 | 50.00 | 60.00 | 1.200 |" in md
    assert "| 2 | mcff_student openvino_bf16 | 450.00 | 30.00 | 0.067 |" in md
    lines = readme_tables.seg_peer_section(doc)
    assert any("`mcff_student_lite` (2.8 GFLOPs), 1 thread(s): 45.0 ms (openvino_bf16), YOLO11n-seg 60.0 ms" in x
               and "= 0.75x" in x for x in lines)  # fmt: skip
    assert len(lines) == 8  # heading, blank, 2 checkpoints x 2 thread counts, blank, footer


def test_readme_block_is_the_rendering_of_the_committed_results() -> None:
    """README figures are the result files' figures: the block between the markers equals ``render()``."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = readme[readme.index(readme_tables.BEGIN) : readme.index(readme_tables.END) + len(readme_tables.END)]
    assert block == readme_tables.render()
