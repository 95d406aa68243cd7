"""What every benchmark shares: one job runner (:mod:`.jobs`), one latency timer and FLOPs count (:mod:`.measure`),
one results writer (:mod:`.results`)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the repository root: jobs run from here (cwd), results are written here

__all__ = ["REPO"]
