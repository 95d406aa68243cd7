"""The one results writer of the benchmarks.

Every results file starts with the same provenance head (:func:`provenance`): the command that wrote it
(``python -m benchmarks.<name> ...``), the git commit (from :func:`kdinspect.utils.env.require_clean_tree`: a tree
with uncommitted changes to tracked files is refused unless ``KDINSPECT_ALLOW_DIRTY=1``, and the commit then reads
``<sha>+dirty``), the environment, and, added by :func:`write_results`, the wall time and the peak RSS.
:func:`write_results` renders the markdown first, then writes ``benchmarks/results/<name>.json`` and ``.md``, each
atomically (a temporary file renamed onto the target): a failure leaves the previous files as they were.
"""

from __future__ import annotations

import json
import logging
import resource
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import REPO

__all__ = ["PROVENANCE_KEYS", "command_line", "method_lines", "provenance", "results_dir", "write_results"]

PROVENANCE_KEYS = ("command", "git_commit", "environment")
logger = logging.getLogger("bench")


def results_dir(repo: Path = REPO) -> Path:
    """``benchmarks/results`` of ``repo``: the committed results files."""
    return repo / "benchmarks" / "results"


def command_line(module: str, argv: Sequence[str] | None = None) -> str:
    """``python -m <module> ARGS`` as run (``argv`` defaults to this process's arguments)."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])


def provenance(module: str, argv: Sequence[str] | None = None, repo: Path = REPO, check: bool = True) -> dict[str, Any]:
    """The head of a results file: command, git commit (``check``: refuses a dirty tree; off for dry runs written
    outside ``benchmarks/results``), environment."""
    from kdinspect.utils.env import environment_info, git_commit, require_clean_tree

    return {
        "command": command_line(module, argv),
        "git_commit": require_clean_tree(repo) if check else git_commit(repo),
        "environment": environment_info(),
    }


def write_results(
    name: str,
    doc: dict[str, Any],
    markdown: Callable[[dict[str, Any]], str],
    t0: float | None = None,
    repo: Path = REPO,
    out_dir: Path | None = None,
) -> Path:
    """Write ``<out_dir>/<name>.json`` and ``.md`` (default ``benchmarks/results`` of ``repo``) atomically.

    ``doc`` needs the :func:`provenance` keys; ``git_commit`` is taken again now (so a tree that changed during the
    run is refused here too, when writing into the committed results folder). ``wall_s`` (since ``t0``, a
    ``time.time()`` value) and ``peak_rss_mb`` (of this process) are added unless ``doc`` has them. Returns the JSON
    path."""
    from kdinspect.utils.env import git_commit, require_clean_tree
    from kdinspect.utils.io import atomic_path

    missing = [k for k in PROVENANCE_KEYS if k not in doc]
    if missing:
        raise ValueError(f"results {name!r}: the document lacks the provenance keys {missing} (use provenance())")
    out = (out_dir or results_dir(repo)) / f"{name}.json"
    committed = out.parent.resolve() == results_dir(repo).resolve()
    doc["git_commit"] = require_clean_tree(repo) if committed else git_commit(repo)  # dry runs elsewhere: recorded
    if t0 is not None and doc.get("wall_s") is None:
        doc["wall_s"] = round(time.time() - t0, 1)
    if doc.get("peak_rss_mb") is None:  # a benchmark may record its own (e.g. the largest of its jobs)
        doc["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    text = json.dumps(doc, indent=2, default=str) + "\n"
    md = markdown(doc)  # rendered before anything is written: a rendering error leaves the old files
    for path, content in ((out, text), (out.with_suffix(".md"), md)):
        with atomic_path(path) as tmp:
            tmp.write_text(content)
    logger.info("wrote %s and %s", out, out.with_suffix(".md"))
    print(f"[bench] wrote {out} and {out.with_suffix('.md')}", flush=True)
    return out


def method_lines(doc: dict[str, Any]) -> list[str]:
    """Markdown lines for a results file's ``latency_method`` and ``notes`` (empty when it has neither)."""
    lines = [doc["latency_method"], ""] if doc.get("latency_method") else []
    if doc.get("notes"):
        lines += ["Notes:", "", *[f"- {n}" for n in doc["notes"]], ""]
    return lines
