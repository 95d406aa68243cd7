"""The one job runner of the benchmarks: resumable subprocess jobs with dependencies, a few at a time.

A :class:`Job` is a name, a command, a work folder, the file whose existence means it finished (a result file or a
done marker) and the names of the jobs it runs ``after``. :func:`run_jobs` starts every unfinished job whose
dependencies have finished, at most ``workers`` at once, each behind the ``launcher`` prefix (``tools/cpu-slot``:
one CPU slot per core) with ``cwd`` = the repository root and its output in ``<log_dir>/<name>.log``:

- a finished job (its ``done`` file exists) is reused, not run again, so an interrupted benchmark resumes;
- a job killed half-way restarts with its ``resume`` arguments (e.g. ``--resume``) when its ``partial`` file (e.g.
  the last checkpoint) exists;
- a job that exits non-zero, or exits 0 without writing its ``done`` file, is reported failed, and the jobs that
  run after it are reported skipped; the others go on;
- while a job runs, ``<work>/.job-running.json`` names its pid, so a second benchmark process on the same machine
  waits for it instead of starting it twice;
- at ``deadline`` (a ``time.monotonic()`` value) the running jobs are terminated and nothing new starts.

Benchmark jobs are their own module run again: ``module_cmd("benchmarks.hsd", "--job", ID)`` =
``[sys.executable, "-m", "benchmarks.hsd", "--job", ID]``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import REPO

__all__ = ["RUNNING_MARKER", "Job", "JobReport", "default_launcher", "module_cmd", "run_jobs"]

RUNNING_MARKER = ".job-running.json"


@dataclass
class Job:
    """One subprocess of a benchmark."""

    name: str
    cmd: list[str]
    work: Path  # the job's own folder (its running marker lives here)
    done: Path  # exists once the job has finished (result file / done marker)
    after: tuple[str, ...] = ()  # names of the jobs that must finish first
    resume: tuple[str, ...] = ()  # arguments added to ``cmd`` when ``partial`` exists (a killed job's restart)
    partial: Path | None = None

    def command(self) -> list[str]:
        """``cmd``, plus ``resume`` when the job left a ``partial`` file behind."""
        if self.resume and self.partial is not None and self.partial.exists():
            return [*self.cmd, *self.resume]
        return list(self.cmd)


@dataclass
class JobReport:
    """What :func:`run_jobs` did: ``finished`` ran to completion now, ``reused`` had finished before, ``failed``
    maps a job to why it did not finish (failed, skipped, stopped); ``record`` has wall time, peak RSS and exit code
    of every job run now."""

    finished: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    record: dict[str, dict[str, Any]] = field(default_factory=dict)


def module_cmd(module: str, *args: str) -> list[str]:
    """``python -m <module> ARGS`` with this interpreter (run with ``cwd`` = the repository root)."""
    return [sys.executable, "-m", module, *args]


def default_launcher(name: str = "cpu-slot") -> str:
    """``tools/cpu-slot`` / ``tools/cpu-whole`` (CPU-slot lock wrappers) where flock exists, else no launcher."""
    return str(REPO / "tools" / name) if shutil.which("flock") else ""


def _marker(job: Job) -> Path:
    return job.work / RUNNING_MARKER


def running_elsewhere(job: Job, own: Sequence[int] = ()) -> bool:
    """True while another live process on this machine (not one of ``own``) runs ``job``."""
    path = _marker(job)
    try:
        info = json.loads(path.read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if info.get("host") != socket.gethostname() or pid in own:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check(jobs: Sequence[Job]) -> None:
    names = [j.name for j in jobs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"job names must be unique; repeated: {dupes}")
    unknown = sorted({a for j in jobs for a in j.after if a not in names})
    if unknown:
        raise ValueError(f"jobs run after unknown jobs {unknown}; known: {names}")


def _say(tag: str, msg: str) -> None:
    print(f"[{tag}] {msg}", flush=True)


def run_jobs(
    jobs: Sequence[Job],
    *,
    log_dir: Path,
    workers: int = 1,
    launcher: str | Sequence[str] = "",
    poll: float = 0.5,
    deadline: float = 0.0,
    on_finish: Callable[[Job], None] | None = None,
    tag: str = "bench",
) -> JobReport:
    """Run the unfinished ``jobs`` (in order, dependencies first, ``workers`` at a time); see the module docstring.

    ``on_finish(job)`` is called after every job that finished (e.g. to rewrite the report)."""
    _check(jobs)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    prefix = shlex.split(launcher) if isinstance(launcher, str) else list(launcher)
    log_dir.mkdir(parents=True, exist_ok=True)
    report = JobReport()
    done: set[str] = set()
    pending: list[Job] = []
    for job in jobs:
        if job.done.exists() and not running_elsewhere(job):
            done.add(job.name)
            report.reused.append(job.name)
        else:
            pending.append(job)
    running: dict[str, tuple[Job, subprocess.Popen, float]] = {}
    while pending or running:
        own = [p.pid for _, p, _ in running.values()]
        _sweep(pending, done, report, own)
        for job in list(pending):
            if len(running) >= workers:
                break
            if all(a in done for a in job.after) and not running_elsewhere(job, own):
                pending.remove(job)
                running[job.name] = (job, _start(job, prefix, log_dir, tag), time.perf_counter())
        if deadline and time.monotonic() > deadline:
            _stop_all(running, report, tag)
            for job in pending:
                report.failed[job.name] = "not started: time limit"
            break
        if not running:
            waiting = [j for j in pending if running_elsewhere(j) or any(running_elsewhere(d) for d in _deps(j, jobs))]
            if not waiting:  # nothing runs here or elsewhere that could unblock them
                for job in pending:
                    report.failed[job.name] = "not runnable: its dependencies did not finish"
                break
            time.sleep(poll)
            continue
        if not _reap(running, done, report, log_dir, on_finish, tag):
            time.sleep(poll)
    return report


def _sweep(pending: list[Job], done: set[str], report: JobReport, own: Sequence[int]) -> None:
    """Take out of ``pending`` the jobs another benchmark process finished, and those whose dependency failed."""
    for job in list(pending):
        if job.done.exists() and not running_elsewhere(job, own):
            pending.remove(job)
            done.add(job.name)
            report.reused.append(job.name)
        elif bad := [a for a in job.after if a in report.failed]:
            pending.remove(job)
            report.failed[job.name] = f"skipped: {bad[0]} did not finish"
            report.record[job.name] = {"rc": "skipped (a dependency failed)"}


def _deps(job: Job, jobs: Sequence[Job]) -> list[Job]:
    return [j for j in jobs if j.name in job.after]


def _start(job: Job, prefix: list[str], log_dir: Path, tag: str) -> subprocess.Popen:
    cmd = [*prefix, *job.command()]
    job.work.mkdir(parents=True, exist_ok=True)
    _say(tag, f"start {job.name}: {shlex.join(cmd)}")
    with (log_dir / f"{job.name}.log").open("a") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    _marker(job).write_text(json.dumps({"pid": proc.pid, "host": socket.gethostname(), "job": job.name}))
    return proc


def _reap(
    running: dict[str, tuple[Job, subprocess.Popen, float]],
    done: set[str],
    report: JobReport,
    log_dir: Path,
    on_finish: Callable[[Job], None] | None,
    tag: str,
) -> bool:
    """Collect the jobs that ended (per pid, so other children of this process are left alone)."""
    ended = False
    for name, (job, proc, t0) in list(running.items()):
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == 0:
            continue
        ended = True
        del running[name]
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code  # reaped here: Popen must not wait for it again
        _marker(job).unlink(missing_ok=True)
        wall = time.perf_counter() - t0
        report.record[name] = {"wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "rc": code}
        if code == 0 and job.done.exists():
            done.add(name)
            report.finished.append(name)
            _say(tag, f"done {name} ({wall:.0f} s)")
            if on_finish is not None:
                on_finish(job)
        else:
            why = f"exit code {code}" if code else f"exit code 0 but no {job.done}"
            report.failed[name] = f"failed: {why}; log {log_dir / (name + '.log')}"
            _say(tag, f"FAILED {name} ({why}); see {log_dir / (name + '.log')}")
    return ended


def _stop_all(running: dict[str, tuple[Job, subprocess.Popen, float]], report: JobReport, tag: str) -> None:
    for job, proc, _ in running.values():
        _say(tag, f"time limit: stopping {job.name}")
        proc.terminate()
    for name, (job, proc, t0) in running.items():
        proc.wait()
        _marker(job).unlink(missing_ok=True)
        report.record[name] = {"wall_s": round(time.perf_counter() - t0, 1), "rc": "stopped at the time limit"}
        report.failed[name] = "stopped at the time limit"
    running.clear()
