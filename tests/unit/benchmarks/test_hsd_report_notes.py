"""benchmarks.hsd_report: a report names the timer its latency.json came from, and drops the committed files'
old-timer note once the latencies are re-measured with the shared timer."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import hsd_report


def test_latency_note_follows_latency_json(tmp_path: Path) -> None:
    assert hsd_report.latency_note(tmp_path) == hsd_report.LATENCY_NOTE  # nothing measured yet: the current timer
    (tmp_path / "latency.json").write_text(json.dumps({"rows": {}, "warmup": 20, "runs": 100}))
    assert hsd_report.latency_note(tmp_path).startswith(hsd_report.OLD_TIMER)  # written by the old timer
    (tmp_path / "latency.json").write_text(json.dumps({"rows": {}, "method": "Latency: median of 50 ..."}))
    assert hsd_report.latency_note(tmp_path).startswith("Latency: median of 50 ...")


def test_old_timer_note_is_dropped_only_after_a_new_measurement(tmp_path: Path) -> None:
    old = f"{hsd_report.OLD_TIMER_NOTE}: ONNX Runtime, 20 warm-up then 100 timed runs."
    notes = ["a finding", old]
    (tmp_path / "latency.json").write_text(json.dumps({"rows": {}}))
    assert hsd_report._kept_notes(notes, tmp_path) == notes
    (tmp_path / "latency.json").write_text(json.dumps({"rows": {}, "method": "new"}))
    assert hsd_report._kept_notes(notes, tmp_path) == ["a finding"]
