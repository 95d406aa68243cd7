"""benchmarks.common.jobs: the one job runner (reuse of finished jobs, failures and skips, ``after`` order, resume,
launcher prefix, jobs run by another process, the time limit)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from benchmarks.common import REPO
from benchmarks.common.jobs import RUNNING_MARKER, Job, module_cmd, run_jobs


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _job(tmp: Path, name: str, code: str, after: tuple[str, ...] = (), **kw: object) -> Job:
    work = tmp / name
    return Job(name, _py(code), work, work / "done", after, **kw)  # type: ignore[arg-type]


def _touch(tmp: Path, name: str, extra: str = "") -> str:
    """Code that writes the job's done file (and ``extra`` first)."""
    return "; ".join(
        [
            "import pathlib, sys, os",
            *([extra] if extra else []),
            f"pathlib.Path({str(tmp / name / 'done')!r}).write_text('ok')",
        ]
    )


def test_finished_job_is_reused_not_run_again(tmp_path: Path) -> None:
    job = _job(tmp_path, "a", _touch(tmp_path, "a", f"pathlib.Path({str(tmp_path / 'ran')!r}).touch()"))
    job.work.mkdir()
    job.done.write_text("earlier run")
    report = run_jobs([job], log_dir=tmp_path / "logs")
    assert report.reused == ["a"] and report.finished == [] and not report.failed
    assert not (tmp_path / "ran").exists() and job.done.read_text() == "earlier run"


def test_failed_job_is_reported_its_dependents_skipped_the_others_run(tmp_path: Path) -> None:
    jobs = [
        _job(tmp_path, "bad", "import sys; print('boom'); sys.exit(3)"),
        _job(tmp_path, "child", _touch(tmp_path, "child"), after=("bad",)),
        _job(tmp_path, "no_result", "pass"),  # exits 0 without writing its done file
        _job(tmp_path, "ok", _touch(tmp_path, "ok")),
    ]
    report = run_jobs(jobs, log_dir=tmp_path / "logs", workers=2, poll=0.01)
    assert report.finished == ["ok"]
    assert set(report.failed) == {"bad", "child", "no_result"}
    assert "exit code 3" in report.failed["bad"] and "skipped" in report.failed["child"]
    assert "no " in report.failed["no_result"] and "done" in report.failed["no_result"]
    assert report.record["bad"]["rc"] == 3 and report.record["ok"]["rc"] == 0
    assert report.record["ok"]["peak_rss_mb"] > 0
    assert "boom" in (tmp_path / "logs" / "bad.log").read_text()  # the job's output is in its log
    assert not (jobs[1].work / "done").exists()


def test_after_order_is_kept_with_several_workers(tmp_path: Path) -> None:
    stamp = "import time; pathlib.Path({p!r}).write_text(repr(time.time()))"
    first = _job(tmp_path, "first", _touch(tmp_path, "first", "import time; time.sleep(0.3)"))
    second = _job(
        tmp_path,
        "second",
        _touch(tmp_path, "second", stamp.format(p=str(tmp_path / "second.start"))),
        after=("first",),
    )
    # listed first, run last: ordering comes from ``after``, not from the list
    report = run_jobs([second, first], log_dir=tmp_path / "logs", workers=2, poll=0.01)
    assert report.finished == ["first", "second"]
    assert float((tmp_path / "second.start").read_text()) >= first.done.stat().st_mtime


def test_killed_job_restarts_with_resume_and_jobs_run_from_the_repo(tmp_path: Path) -> None:
    code = _touch(tmp_path, "train", "pathlib.Path(sys.argv[0]).exists(); print(os.getcwd(), sys.argv[1:])")
    job = _job(tmp_path, "train", code, resume=("--resume",), partial=tmp_path / "train" / "last.ckpt")
    assert job.command() == job.cmd  # no partial file: a fresh start
    job.work.mkdir()
    (job.work / "last.ckpt").write_text("half-way")
    assert job.command() == [*job.cmd, "--resume"]
    report = run_jobs([job], log_dir=tmp_path / "logs", launcher="env KDINSPECT_TEST_LAUNCHED=1")
    assert report.finished == ["train"]
    log = (tmp_path / "logs" / "train.log").read_text()
    assert f"{REPO} ['--resume']" in log
    assert not (job.work / RUNNING_MARKER).exists()  # the marker goes with the job


def test_launcher_prefixes_every_job(tmp_path: Path) -> None:
    code = _touch(tmp_path, "j", "assert os.environ['KDINSPECT_TEST_LAUNCHED'] == '1'")
    report = run_jobs([_job(tmp_path, "j", code)], log_dir=tmp_path / "logs", launcher="env KDINSPECT_TEST_LAUNCHED=1")
    assert report.finished == ["j"] and not report.failed


def test_job_run_by_another_process_is_waited_for_not_started_twice(tmp_path: Path) -> None:
    job = _job(tmp_path, "shared", _touch(tmp_path, "shared", f"pathlib.Path({str(tmp_path / 'ran')!r}).touch()"))
    job.work.mkdir()
    marker = job.work / RUNNING_MARKER
    # another benchmark process's job: writes its result, then its runner removes the marker
    other = subprocess.Popen(
        _py(f"import time, pathlib; time.sleep(0.4); pathlib.Path({str(job.done)!r}).touch(); "
            f"pathlib.Path({str(marker)!r}).unlink()")
    )  # fmt: skip
    marker.write_text(json.dumps({"pid": other.pid, "host": socket.gethostname()}))
    try:
        report = run_jobs([job], log_dir=tmp_path / "logs", poll=0.05)
    finally:
        other.wait()
    assert report.reused == ["shared"] and not report.failed and not (tmp_path / "ran").exists()


def test_stale_marker_of_a_dead_process_does_not_block(tmp_path: Path) -> None:
    job = _job(tmp_path, "j", _touch(tmp_path, "j"))
    job.work.mkdir()
    dead = subprocess.Popen(_py("pass"))
    dead.wait()
    (job.work / RUNNING_MARKER).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    assert run_jobs([job], log_dir=tmp_path / "logs", poll=0.01).finished == ["j"]


def test_time_limit_stops_running_jobs_and_starts_no_more(tmp_path: Path) -> None:
    jobs = [_job(tmp_path, "slow", "import time; time.sleep(30)"), _job(tmp_path, "later", _touch(tmp_path, "later"))]
    t0 = time.monotonic()
    report = run_jobs(jobs, log_dir=tmp_path / "logs", workers=1, poll=0.02, deadline=t0 + 0.3)
    assert time.monotonic() - t0 < 10
    assert report.failed == {"slow": "stopped at the time limit", "later": "not started: time limit"}


def test_bad_job_lists_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown jobs"):
        run_jobs([_job(tmp_path, "a", "pass", after=("nope",))], log_dir=tmp_path)
    with pytest.raises(ValueError, match="unique"):
        run_jobs([_job(tmp_path, "a", "pass"), _job(tmp_path, "a", "pass")], log_dir=tmp_path)


def test_module_cmd_runs_a_benchmark_module_with_this_interpreter() -> None:
    assert module_cmd("benchmarks.hsd", "--job", "x") == [sys.executable, "-m", "benchmarks.hsd", "--job", "x"]
