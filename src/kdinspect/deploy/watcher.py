"""``serve --watch``: a thread that subscribes to a result stream and keeps the newest frame for the web page.

The thread survives anything a sender sends (messages are checked by the receiver; an unexpected error is logged,
counted and the loop goes on), follows a sender that restarts (new session: counters restart), and reports its own
state for ``/health``: ``dead`` (the thread has stopped) or ``stalled`` (its loop has not come round for
``stall_s``) make the service ``degraded``; ``waiting`` (no frame yet) and ``idle`` (no frame for ``stall_s``) are
the sender's business and leave it ``ok``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kdinspect.deploy.curve import CurveClient
from kdinspect.deploy.transport import ResultReceiver

__all__ = ["StreamWatcher"]

logger = logging.getLogger(__name__)


class StreamWatcher:
    """Subscribes to a result stream in a thread and keeps the newest frame for the web page.

    Args:
        endpoint: ``tcp://HOST:PORT`` of ``kdinspect stream --publish``.
        curve: CURVE client keys.
        stall_s: a loop that has not come round for this long is reported as stalled (it polls every 0.2 s).
    """

    def __init__(self, endpoint: str, curve: CurveClient | None = None, stall_s: float = 5.0) -> None:
        self.endpoint = endpoint
        self.curve = curve
        self.stall_s = stall_s
        self.receiver = self._connect()
        self.latest: tuple[dict[str, Any], bytes] | None = None
        self.errors = 0
        self.last_error: str | None = None
        self.heartbeat = time.monotonic()
        self.t_frame: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-watcher", daemon=True)
        self._thread.start()

    def _connect(self) -> ResultReceiver:
        return ResultReceiver(self.endpoint, self.curve, hwm=4, follow_new_sessions=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.heartbeat = time.monotonic()
                try:
                    self._step()
                except Exception as err:  # keep watching: the page must not freeze on one bad frame
                    self.errors += 1
                    self.last_error = f"{type(err).__name__}: {err}"
                    if self.errors <= 10 or self.errors % 100 == 0:
                        logger.exception("stream watcher on %s (error %d); going on", self.endpoint, self.errors)
                    self._stop.wait(0.2)
        except BaseException as err:
            self.last_error = f"{type(err).__name__}: {err}"
            logger.error("stream watcher on %s stopped: %s", self.endpoint, self.last_error)
            raise

    def _step(self) -> None:
        msg = self.receiver.recv_latest(timeout=0.2)
        if msg is not None:
            lat = None if msg.latency_ms is None else round(msg.latency_ms, 3)
            self.latest = (msg.meta | {"latency_ms": lat}, msg.jpeg)
            self.t_frame = time.monotonic()
        elif self.receiver.stats.ended:  # that stream ended: wait for the next one with fresh counters
            self.receiver.close()
            self.receiver = self._connect()

    def health(self) -> dict[str, Any]:
        """``state`` (receiving / waiting / idle / stalled / dead), ``ok`` and, when not ok, the ``problem``."""
        now = time.monotonic()
        beat = now - self.heartbeat
        problem = None
        if not self._thread.is_alive():
            state, problem = "dead", f"the watcher thread has stopped ({self.last_error or 'no error recorded'})"
        elif beat > self.stall_s:
            state, problem = "stalled", f"the watcher thread has not come round for {beat:.1f} s"
        elif self.t_frame is None:
            state = "waiting"
        else:
            state = "idle" if now - self.t_frame > self.stall_s else "receiving"
        stats = self.receiver.stats
        return {
            "endpoint": self.endpoint,
            "state": state,
            "ok": problem is None,
            "problem": problem,
            "heartbeat_age_s": round(beat, 2),
            "last_frame_age_s": None if self.t_frame is None else round(now - self.t_frame, 2),
            "received": stats.received,
            "rejected": stats.rejected,
            "errors": self.errors,
            "last_error": self.last_error,
        }

    def status(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            **self.receiver.stats.summary(),
            "watcher": self.health()["state"],
            "latest": self.latest[0] if self.latest else None,
        }

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        if not self._thread.is_alive():
            self.receiver.close()
