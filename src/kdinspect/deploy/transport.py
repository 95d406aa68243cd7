"""Per-frame results over ZeroMQ: a JSON metadata part and the JPEG overlay as a separate binary part.

Messages are ``[b"kdinspect", json_meta, jpeg]`` (no base64; the format and its checks: :mod:`kdinspect.deploy.wire`).
``meta`` carries ``session`` (random per sender run), ``seq`` (0, 1, 2, ... per frame handed to :meth:`publish`, so
gaps are drops), ``t_capture`` and ``t_publish`` (``time.time()`` on the sender) and the results. The last message
of a stream is ``[b"kdinspect", {"end": true, "session": S, "published": N, ...}]``.

Two delivery modes, both on an XPUB socket with ``XPUB_NODROP`` so the sender knows when a frame does not fit:

- live (default): a small send high-water mark; a frame that does not fit is not sent (its ``seq`` is used, so the
  receiver sees the gap). A slow receiver never slows the camera loop down.
- reliable (``--reliable``): a bounded buffer (``hwm``, default 1000 frames) and blocking sends that wait up to
  ``send_timeout`` for the receiver; a frame it does not take in that time, or sent while no receiver is subscribed
  (after waiting ``send_timeout`` once for one to come back), is counted as not sent.

What the sender knows: a frame "sent to the socket" is queued for the receivers, not delivered. Receivers
acknowledge what they got (upstream on the same connection); :meth:`ResultPublisher.close` reports
``acknowledged`` (the most frames one receiver confirmed) and ``unconfirmed`` (sent to the socket, not confirmed).

CURVE (:mod:`kdinspect.deploy.curve`) encrypts and authenticates links that leave the machine.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any

import zmq

from kdinspect.deploy.curve import CurveClient, CurveServer, create_curve_keys, setup_server
from kdinspect.deploy.receiver import Message, ReceiverStats, ResultReceiver
from kdinspect.deploy.wire import TOPIC, check_endpoint, is_loopback, parse_ack

__all__ = [
    "TOPIC",
    "CurveClient",
    "CurveServer",
    "Message",
    "ReceiverStats",
    "ResultPublisher",
    "ResultReceiver",
    "check_endpoint",
    "create_curve_keys",
]

logger = logging.getLogger(__name__)


class ResultPublisher:
    """Binds an XPUB socket and sends per-frame results; reads subscriptions and acknowledgements from receivers.

    Args:
        endpoint: ``tcp://HOST:PORT`` to bind (use 127.0.0.1 unless the link must leave the machine).
        reliable: wait for slow receivers (bounded) instead of dropping frames at once.
        hwm: send high-water mark in messages (default 4 live, 1000 reliable).
        curve: CURVE server keys (encryption + optional client authentication).
        send_timeout: seconds a reliable send may wait for the receiver to take a frame, or for a receiver to
            subscribe again when none is left.
    """

    def __init__(
        self,
        endpoint: str,
        reliable: bool = False,
        hwm: int | None = None,
        curve: CurveServer | None = None,
        send_timeout: float = 10.0,
    ) -> None:
        self.endpoint = check_endpoint(endpoint)
        self.reliable = reliable
        self.send_timeout = send_timeout
        self.ctx = zmq.Context()
        self.auth: Any = None
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.XPUB_NODROP, 1)
        self.sock.setsockopt(zmq.SNDHWM, max(1, hwm or (1000 if reliable else 4)))
        self.sock.setsockopt(zmq.SNDTIMEO, int(send_timeout * 1000))
        self.sock.setsockopt(zmq.LINGER, int(send_timeout * 1000))
        if curve is not None:
            self.auth = setup_server(self.ctx, self.sock, curve)
        elif not is_loopback(endpoint):
            logger.warning("publishing on %s without CURVE: results and images travel unencrypted", endpoint)
        self.sock.bind(self.endpoint)
        self.session = secrets.token_hex(8)
        self.seq = 0
        self.sent = 0
        self.dropped = 0
        self.subscribers = 0
        self.acks: dict[str, dict[str, Any]] = {}
        self._no_receiver = False  # a reliable send found nobody and gave up waiting: do not wait per frame

    def _poll_upstream(self, timeout_ms: int = 0) -> None:
        """Read (un)subscriptions and acknowledgements waiting on the socket."""
        while self.sock.poll(timeout_ms, zmq.POLLIN):
            msg = self.sock.recv()
            timeout_ms = 0
            if msg[:1] in (b"\x00", b"\x01"):
                self.subscribers += 1 if msg[:1] == b"\x01" else -1
                continue
            ack = parse_ack(msg)
            if ack is None or ack["session"] != self.session:
                logger.debug("%s: ignored an upstream message that is not an acknowledgement", self.endpoint)
                continue
            old = self.acks.get(ack["receiver"])
            if old is None or ack["received"] >= old["received"]:
                self.acks[ack["receiver"]] = ack

    def wait_for_subscriber(self, timeout: float) -> bool:
        """Block until a receiver has subscribed (so the first frames are not lost to the connect delay)."""
        deadline = time.monotonic() + timeout
        while self.subscribers <= 0 and time.monotonic() < deadline:
            self._poll_upstream(int(min(100, max(1, (deadline - time.monotonic()) * 1000))))
        return self.subscribers > 0

    def _receiver_present(self) -> bool:
        """Reliable mode: is someone subscribed? Waits up to ``send_timeout`` once per outage."""
        if self.subscribers > 0:
            self._no_receiver = False
            return True
        if not self._no_receiver and self.wait_for_subscriber(self.send_timeout):
            return True
        if not self._no_receiver:
            logger.warning(
                "%s: no receiver subscribed for %.1f s: frames are counted as not sent until one subscribes",
                self.endpoint,
                self.send_timeout,
            )
        self._no_receiver = True
        return False

    def publish(self, meta: Mapping[str, Any], jpeg: bytes | None = None) -> bool:
        """Send one frame's results; False when it was not sent (live: receiver too slow; reliable: no receiver,
        or it did not take the frame within ``send_timeout``). True means queued on the socket, not delivered."""
        self._poll_upstream()
        body = dict(meta) | {"session": self.session, "seq": self.seq, "t_publish": time.time()}
        parts = [TOPIC, json.dumps(body, separators=(",", ":")).encode()] + ([jpeg] if jpeg is not None else [])
        self.seq += 1
        if self.reliable and not self._receiver_present():
            self.dropped += 1
            return False
        try:
            self.sock.send_multipart(parts, flags=0 if self.reliable else zmq.NOBLOCK, copy=False)
        except zmq.Again:
            if self.reliable:
                logger.warning(
                    "%s: the receiver did not take frame %d within %.1f s: not sent",
                    self.endpoint,
                    body["seq"],
                    self.send_timeout,
                )
            self.dropped += 1
            return False
        self.sent += 1
        return True

    def report(self) -> dict[str, Any]:
        """What the sender knows: frames sent to the socket, not sent, and confirmed by receivers."""
        acknowledged = max((a["received"] for a in self.acks.values()), default=0)
        return {
            "frames": self.seq,
            "sent_to_socket": self.sent,
            "not_sent": self.dropped,
            "acknowledged": acknowledged,
            "unconfirmed": max(0, self.sent - acknowledged),
            "receivers_acknowledging": len(self.acks),
        }

    def close(self, end_timeout: float = 2.0) -> dict[str, Any]:
        """Send the end-of-stream message, wait up to ``end_timeout`` s for the receivers' last acknowledgements,
        close the socket, and return :meth:`report`."""
        self._poll_upstream()
        end = {
            "end": True,
            "session": self.session,
            "published": self.seq,
            "sent": self.sent,
            "dropped_by_sender": self.dropped,
            "t_publish": time.time(),
        }
        self.sock.setsockopt(zmq.SNDTIMEO, int(end_timeout * 1000))
        try:
            self.sock.send_multipart([TOPIC, json.dumps(end).encode()])
        except zmq.Again:
            logger.warning("end-of-stream message not delivered to %s", self.endpoint)
        deadline = time.monotonic() + end_timeout
        while self.subscribers > 0 and time.monotonic() < deadline:
            if self.acks and all(a.get("end") for a in self.acks.values()):
                break
            self._poll_upstream(20)
        self.sock.close(linger=int(end_timeout * 1000))
        if self.auth is not None:
            self.auth.stop()
        self.ctx.term()
        report = self.report()
        logger.info("%s: %s", self.endpoint, report)
        return report
