"""Logging set-up for the CLI and run folders (the library itself only uses ``logging.getLogger``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

__all__ = ["add_file_handler", "setup_logging"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: int | str = logging.INFO) -> None:
    """Send kdinspect logs to stderr (idempotent)."""
    root = logging.getLogger("kdinspect")
    root.setLevel(level)
    if not any(getattr(h, "_kdinspect", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        handler._kdinspect = True  # type: ignore[attr-defined]
        root.addHandler(handler)


def add_file_handler(path: str | Path) -> logging.Handler:
    """Also write kdinspect logs to ``path``; returns the handler so the caller can remove it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger = logging.getLogger("kdinspect")
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler
