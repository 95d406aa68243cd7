"""Environment report: versions, threads, devices (``kdinspect info``; recorded in every run folder)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

__all__ = ["cpu_model", "environment_info", "git_commit"]

_PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "onnx",
    "onnxruntime",
    "opencv-python-headless",
    "faster-coco-eval",
    "safetensors",
    "pyzmq",
    "fastapi",
    "ultralytics",
    "segmentation-models-pytorch",
)


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit(path: str | Path = ".") -> str:
    """Current git commit of the folder; ``+dirty`` when there are changes.

    Outside a repository (e.g. a copy of the working tree on a remote GPU machine) the ``KDINSPECT_GIT_COMMIT``
    environment variable names the commit, else ``unknown``.
    """
    try:
        sha = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("KDINSPECT_GIT_COMMIT", "unknown")


def require_clean_tree(path: str | Path = ".") -> str:
    """The commit a benchmark's results will name; exits with a clear message when the tree has uncommitted changes
    to tracked files, since such a results file could not be reproduced from any commit. ``KDINSPECT_ALLOW_DIRTY=1``
    lets it run anyway (the file then records ``<sha>+dirty``)."""
    commit = git_commit(path)
    if commit.endswith("+dirty") and os.environ.get("KDINSPECT_ALLOW_DIRTY") != "1":
        raise SystemExit(
            f"refusing to write benchmark results from {Path(path).resolve()}: tracked files have uncommitted changes "
            "(see `git status`). Commit them first, or set KDINSPECT_ALLOW_DIRTY=1 (the results will say '+dirty')."
        )
    return commit


def _versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def environment_info() -> dict[str, Any]:
    """A JSON-able description of the machine and software."""
    from kdinspect import __version__

    cuda = torch.cuda.is_available()
    return {
        "kdinspect": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": cuda,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else ["cpu"],
        "packages": _versions(),
    }
