"""`kdinspect demo` end to end at one epoch: generated data -> teacher -> students -> evaluation -> report."""

from __future__ import annotations

import json

from kdinspect.cli.main import main


def test_demo_one_epoch_writes_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "1", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    names = [r["model"] for r in report["rows"]]
    assert names == ["teacher U-Net w16", "student U-Net w4", "student U-Net w4 + KD"]
    teacher, student, distilled = report["rows"]
    assert teacher["params"] > 4 * student["params"]  # the student is the small model
    assert student["params"] == distilled["params"]
    for row in report["rows"]:
        for key in ("f1", "iou", "f1_tol", "ods"):
            assert 0.0 <= row[key] <= 1.0
        assert row["latency_ms"] > 0
    # the distilled run trained with the teacher in the loop and saved the student only
    cfg = (out / "seg_2_student_kd" / "config.yaml").read_text()
    assert "pixel_kd" in cfg
    assert "student U-Net w4 + KD" in printed and (out / "report.md").exists()
    # the generated dataset is on disk in a documented reader format, deterministic by seed
    assert any((out / "data").rglob("*.png"))
