"""benchmarks.template_deeppcb: the job list (teacher before the students it teaches) and the honest training wall
time of a job that was interrupted and resumed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks import template_deeppcb as tb


def test_jobs_order_and_one_teacher_per_input() -> None:
    args = tb.parse_args(["--seeds", "0", "1"])
    ids = [tb.job_id(*j) for j in tb.jobs(args)]
    assert ids[:6] == ["pair_student_s0", "pair_student_s1", "image_student_s0", "image_student_s1",
                       "pair_teacher_s0", "image_teacher_s0"]  # fmt: skip
    assert ids[6:] == ["pair_student_kd_s0", "pair_student_kd_s1", "image_student_kd_s0", "image_student_kd_s1"]
    assert [i for i in ids if "teacher" in i] == ["pair_teacher_s0", "image_teacher_s0"]
    assert tb.parse_args(["--inputs", "image"]).inputs == ["image"]


def test_interrupted_attempt_counts_until_its_last_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "job"
    assert tb._attempts_wall(out, 1000.0) == 0.0  # first attempt: nothing before it
    (out / "last.safetensors").write_bytes(b"x")
    os.utime(out / "last.safetensors", (1600.0, 1600.0))  # killed after its checkpoint at t=1600
    assert tb._attempts_wall(out, 5000.0) == 600.0  # the idle gap before the restart does not count
    attempts = json.loads((out / "attempts.json").read_text())
    assert attempts == [{"start": 1000.0, "end": 1600.0}, {"start": 5000.0, "end": None}]
    os.utime(out / "last.safetensors", (5300.0, 5300.0))
    assert tb._attempts_wall(out, 9000.0) == 900.0  # both interrupted attempts


def test_deliberate_pauses_do_not_count(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    t0 = 1_800_000_000.0
    (tmp_path / "pauses.txt").write_text(
        f"paused {iso(t0 + 100)} (pids 1 2) for CI\nresumed {iso(t0 + 400)} (pids 1 2)\npaused {iso(t0 + 900)}\n"
    )
    assert tb.paused_s(tmp_path, t0, t0 + 1000) == 300 + 100  # the second pause has no resume yet: runs to the end
    assert tb.paused_s(tmp_path, t0 + 200, t0 + 300) == 100  # only the overlap counts
    assert tb.paused_s(tmp_path, t0 + 500, t0 + 800) == 0
    out = tmp_path / "job"
    assert tb._attempts_wall(out, t0) == 0.0
    (out / "last.safetensors").write_bytes(b"x")
    os.utime(out / "last.safetensors", (t0 + 600, t0 + 600))
    assert tb._attempts_wall(out, t0 + 2000) == 600 - 300  # the interrupted attempt, less its pause
