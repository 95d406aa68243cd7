"""Logging set-up for the CLI and run folders (the library itself only uses ``logging.getLogger``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

__all__ = ["add_file_handler", "setup_logging"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _ConsoleFormatter(logging.Formatter):
    """Plain messages for INFO (they read as the tool's output); ``WARNING`` / ``ERROR`` prefixed."""

    def format(self, record: logging.LogRecord) -> str:
        msg = super().format(record)
        return msg if record.levelno < logging.WARNING else f"{record.levelname} {msg}"


class _TqdmHandler(logging.StreamHandler):
    """Writes through ``tqdm.write`` so a log line never lands in the middle of a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # logging must never raise
            self.handleError(record)


def setup_logging(level: int | str = logging.INFO) -> None:
    """Send kdinspect logs to stderr (idempotent), above any progress bar."""
    root = logging.getLogger("kdinspect")
    root.setLevel(level)
    if not any(getattr(h, "_kdinspect", False) for h in root.handlers):
        handler = _TqdmHandler(sys.stderr)
        handler.setFormatter(_ConsoleFormatter("%(message)s"))
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
