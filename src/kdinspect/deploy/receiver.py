"""The receiving end of a result stream: checks every message, counts frames, gaps, rejects and latency, and
acknowledges what it got to the sender.

Rules (the sender in :mod:`kdinspect.deploy.transport` satisfies them; a stray or malformed message does not):

- every message is checked by :func:`kdinspect.deploy.wire.parse`; a bad one is counted under its reason
  (``stats.rejects``), logged, and skipped: the receiver keeps running.
- the receiver follows one sender session (the ``session`` of the first frame it gets); frames of another session
  are rejected (``other_session``), unless ``follow_new_sessions`` (then the counters restart for the new session).
- an end message stops the receiver only when it carries that session and a ``published`` count above every
  ``seq`` received; otherwise it is rejected (``end_session``, ``end_count``).
- a frame whose clocks are impossible (see :func:`kdinspect.deploy.wire.latency_ms`) counts as received but is
  left out of the latency statistics (``latency_excluded``).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq

from kdinspect.deploy import wire
from kdinspect.deploy.curve import CurveClient, setup_client
from kdinspect.deploy.samples import Reservoir

__all__ = ["Message", "ReceiverStats", "ResultReceiver"]

logger = logging.getLogger(__name__)

ACK_EVERY = 16  # frames
MAX_MESSAGE_BYTES = 64 << 20  # a peer sending a larger message part is disconnected by ZeroMQ
ACK_INTERVAL_S = 0.1
_END = object()


@dataclass
class Message:
    """One received frame: metadata, JPEG bytes (may be empty) and end-to-end latency in ms (now - t_capture;
    None when the frame's clocks are impossible)."""

    meta: dict[str, Any]
    jpeg: bytes
    latency_ms: float | None


@dataclass
class ReceiverStats:
    """Counts of a receiving session. ``dropped`` counts sequence gaps (and frames missing at the end): frames that
    never arrived; ``skipped`` counts frames that arrived but were passed over for a newer one (``recv_latest``);
    ``rejected`` counts messages that failed the checks, by reason in ``rejects``. Latency percentiles are over
    every frame up to 100,000, then over a uniform sample of them (:class:`Reservoir`; the max is exact)."""

    received: int = 0
    dropped: int = 0
    skipped: int = 0
    published: int | None = None
    first_seq: int | None = None
    ended: bool = False
    session: str | None = None
    rejected: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    latency_excluded: int = 0
    stopped_by: str | None = None
    latencies_ms: Reservoir = field(default_factory=Reservoir)
    t_start: float = field(default_factory=time.monotonic)
    t_last: float = 0.0

    def add_latency(self, value: float) -> None:
        self.latencies_ms.add(value)

    def summary(self) -> dict[str, Any]:
        lat = self.latencies_ms
        span = max(1e-9, self.t_last - self.t_start) if self.received else 0.0

        note = None
        if self.latency_excluded:
            note = (
                f"{self.latency_excluded} frame(s) left out of the latency statistics: impossible clocks (capture "
                f"after publish, or a latency below -{wire.CLOCK_SKEW_S:g} s or above {wire.MAX_LATENCY_S:g} s; "
                "check the sender's clock)"
            )
        return {
            "received": self.received,
            "dropped": self.dropped,
            "skipped_stale": self.skipped,
            "published": self.published,
            "first_seq": self.first_seq,
            "ended": self.ended,
            "stopped_by": self.stopped_by,
            "session": self.session,
            "rejected": self.rejected,
            "rejects": dict(self.rejects),
            "latency_ms_p50": lat.median(),
            "latency_ms_p99": lat.percentile(0.99),
            "latency_ms_max": lat.maximum(),
            "latency_excluded": self.latency_excluded,
            "latency_note": note,
            "fps": round(self.received / span, 2) if span else None,
        }


class ResultReceiver:
    """Connects to a publisher (an XSUB socket: it can acknowledge upstream) and tracks frames, drops, rejects and
    latency.

    Args:
        endpoint: ``tcp://HOST:PORT`` of the publisher.
        curve: CURVE client keys when the publisher uses CURVE.
        hwm: receive high-water mark in messages.
        follow_new_sessions: when frames of a new sender session arrive, restart the counters for it (a display
            that outlives senders) instead of rejecting them.
    """

    def __init__(
        self, endpoint: str, curve: CurveClient | None = None, hwm: int = 1000, follow_new_sessions: bool = False
    ) -> None:
        self.endpoint = wire.check_endpoint(endpoint)
        self.follow_new_sessions = follow_new_sessions
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.XSUB)
        self.sock.setsockopt(zmq.RCVHWM, hwm)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self.sock.setsockopt(zmq.SNDHWM, 64)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            setup_client(self.sock, curve)
        self.sock.connect(self.endpoint)
        self.sock.send(b"\x01" + wire.TOPIC)  # subscribe (XSUB re-sends it on every reconnect)
        self.id = secrets.token_hex(4)
        self.stats = ReceiverStats()
        self._last_seq: int | None = None
        self._unacked = 0
        self._t_ack = time.monotonic()

    def _reject(self, reason: str, detail: str) -> None:
        self.stats.rejected += 1
        n = self.stats.rejects[reason] = self.stats.rejects.get(reason, 0) + 1
        if n <= 10 or n % 100 == 0:
            logger.warning("%s: rejected message (%s, %d so far): %s", self.endpoint, reason, n, detail)

    def _ack(self, end: bool = False) -> None:
        if self.stats.session is None:
            return
        ack = wire.encode_ack(self.stats.session, self.id, self.stats.received, self._last_seq, end)
        with contextlib.suppress(zmq.ZMQError):  # the sender is gone or not reading: acknowledgements are best effort
            self.sock.send(ack, zmq.NOBLOCK)
        self._unacked, self._t_ack = 0, time.monotonic()

    def _end(self, end: wire.End) -> object | None:
        if end.session != self.stats.session:
            self._reject("end_session", f"end of session {end.session!r:.40} while receiving {self.stats.session!r}")
            return None
        if self._last_seq is not None and end.published <= self._last_seq:
            self._reject("end_count", f"end says {end.published} published, but frame {self._last_seq} arrived")
            return None
        self.stats.ended = True
        self.stats.published = end.published
        if self._last_seq is not None:
            self.stats.dropped += max(0, end.published - 1 - self._last_seq)
        self._ack(end=True)
        return _END

    def _accept(self, parts: list[bytes], now: float) -> Message | object | None:
        """A :class:`Message`, ``_END``, or None (rejected)."""
        try:
            item = wire.parse(parts)
        except wire.Reject as rej:
            self._reject(rej.reason, rej.detail)
            return None
        if isinstance(item, wire.End):
            return self._end(item)
        if self.stats.session is None:
            self.stats.session = item.session
        elif item.session != self.stats.session:
            if not self.follow_new_sessions:
                self._reject("other_session", f"frame {item.seq} of session {item.session!r}")
                return None
            logger.info("%s: new sender session %s: counters restart", self.endpoint, item.session)
            self.stats, self._last_seq = ReceiverStats(session=item.session), None
        if self._last_seq is None:
            self.stats.first_seq = item.seq
        elif item.seq > self._last_seq + 1:
            self.stats.dropped += item.seq - self._last_seq - 1
        self._last_seq = item.seq
        latency = wire.latency_ms(item.meta, now)
        if latency is None:
            self.stats.latency_excluded += 1
        else:
            self.stats.add_latency(latency)
        self.stats.received += 1
        self.stats.t_last = time.monotonic()
        self._unacked += 1
        if self._unacked >= ACK_EVERY or self.stats.t_last - self._t_ack > ACK_INTERVAL_S:
            self._ack()
        return Message(item.meta, item.jpeg, latency)

    def recv(self, timeout: float | None = None) -> Message | None:
        """The next valid frame; None on timeout or at the end of the stream (then ``stats.ended`` is True).
        Rejected messages are counted and skipped (the wait goes on until ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.stats.ended:
            wait = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if not self.sock.poll(wait, zmq.POLLIN):
                return None
            out = self._accept(self.sock.recv_multipart(), time.time())
            if out is _END:
                return None
            if isinstance(out, Message):
                return out
        return None

    def recv_latest(
        self, timeout: float | None = None, each: Callable[[Message], None] | None = None
    ) -> Message | None:
        """Wait for a frame, then take every frame already waiting and return the newest (live display).

        A receiver slower than the sender would otherwise work through frames buffered in the sockets, seconds
        old. The older ones still count as received (``stats.skipped``: received, not returned); ``each`` is called
        for every frame, skipped or not (for logs).
        """
        msg = self.recv(timeout)
        if msg is None:
            return None
        if each is not None:
            each(msg)
        while self.sock.poll(0, zmq.POLLIN):
            newer = self.recv(0)
            if newer is None:
                break
            if each is not None:
                each(newer)
            self.stats.skipped += 1
            msg = newer
        return msg

    def close(self) -> None:
        """Acknowledge what arrived (so the sender can report it) and close."""
        self._ack(end=self.stats.ended)
        self.sock.close(linger=200)
        self.ctx.term()
