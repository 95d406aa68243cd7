"""SIGTERM handled like Ctrl-C by the long-running commands, so a stopped ``stream`` / ``receive`` still closes its
sockets and writes its summary."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["Terminated", "sigterm_interrupts", "stop_reason"]


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM (a KeyboardInterrupt, so every ``except KeyboardInterrupt`` applies)."""


def stop_reason(err: KeyboardInterrupt) -> str:
    return "SIGTERM" if isinstance(err, Terminated) else "SIGINT"


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While active, the first SIGTERM raises :class:`Terminated` in the main thread; a second one (during the
    cleanup) gets the previous handler. Does nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, previous)
        raise Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
