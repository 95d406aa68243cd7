"""Per-frame results over ZeroMQ PUB/SUB: a JSON metadata part and the JPEG overlay as a separate binary part.

Messages are ``[b"kdinspect", json_meta, jpeg]`` (no base64). ``meta`` carries ``seq`` (0, 1, 2, ... per published
frame, so gaps are drops), ``t_capture`` and ``t_publish`` (``time.time()`` on the sender) and the results. The last
message of a stream is ``[b"kdinspect", {"end": true, "published": N}]``.

Two delivery modes, both on an XPUB socket with ``XPUB_NODROP`` so the sender knows when a frame does not fit:

- live (default): a small send high-water mark; a frame that does not fit is dropped at once (its ``seq`` is used,
  so the receiver sees the gap). A slow receiver never slows the camera loop down.
- reliable (``--reliable``): a large high-water mark and blocking sends: the sender waits for the receiver, nothing
  is dropped (and latency grows if the receiver is too slow).

CURVE (``zmq.auth``) encrypts and authenticates links that leave the machine: the sender is the CURVE server;
receivers need the server's public key and, when the sender lists authorised clients, their own key pair.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import zmq

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

TOPIC = b"kdinspect"
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def check_endpoint(endpoint: str) -> str:
    """Validate ``tcp://HOST:PORT`` (or ``ipc://``/``inproc://``) and return it; a bare ``PORT`` or ``:PORT`` means
    ``tcp://127.0.0.1:PORT`` (loopback unless a host is given)."""
    bare = endpoint.lstrip(":")
    if bare.isdigit():
        return f"tcp://127.0.0.1:{bare}"
    url = urlparse(endpoint)
    if url.scheme in ("ipc", "inproc"):
        return endpoint
    if url.scheme != "tcp" or not url.hostname or url.port is None:
        raise ValueError(f"endpoint {endpoint!r} is not tcp://HOST:PORT (e.g. tcp://127.0.0.1:5555)")
    return endpoint


def _is_loopback(endpoint: str) -> bool:
    url = urlparse(endpoint)
    return url.scheme != "tcp" or (url.hostname or "") in _LOOPBACK


@dataclass
class CurveServer:
    """Sender-side CURVE: its secret key file and, optionally, a folder of authorised client public keys."""

    secret_key_file: Path
    authorized_clients: Path | None = None


@dataclass
class CurveClient:
    """Receiver-side CURVE: the sender's public key file and this receiver's secret key file."""

    server_public_key_file: Path
    secret_key_file: Path


def create_curve_keys(folder: str | Path) -> dict[str, Path]:
    """Write a server and a client key pair into ``folder`` (and the client's public key into
    ``folder/authorized_clients``). Returns the paths by name."""
    from zmq import auth as zauth

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    server_pub, server_sec = zauth.create_certificates(folder, "server")
    client_pub, client_sec = zauth.create_certificates(folder, "client")
    auth = folder / "authorized_clients"
    auth.mkdir(exist_ok=True)
    (auth / "client.key").write_bytes(Path(client_pub).read_bytes())
    for secret in (server_sec, client_sec):
        Path(secret).chmod(0o600)
    return {
        "server_public": Path(server_pub),
        "server_secret": Path(server_sec),
        "client_public": Path(client_pub),
        "client_secret": Path(client_sec),
        "authorized_clients": auth,
    }


def _load_secret(path: Path) -> tuple[bytes, bytes]:
    from zmq import auth as zauth

    if not path.is_file():
        raise FileNotFoundError(f"{path}: CURVE key file not found (create keys with 'kdinspect keys DIR')")
    public, secret = zauth.load_certificate(path)
    if secret is None:
        raise ValueError(f"{path}: not a secret key file (use the '.key_secret' file)")
    return public, secret


class ResultPublisher:
    """Binds an XPUB socket and sends per-frame results.

    Args:
        endpoint: ``tcp://HOST:PORT`` to bind (use 127.0.0.1 unless the link must leave the machine).
        reliable: lossless mode (blocking sends, large buffer) instead of dropping frames for slow receivers.
        hwm: send high-water mark in messages for the live mode.
        curve: CURVE server keys (encryption + optional client authentication).
        send_timeout: seconds a blocking send (reliable mode, end message) may wait before giving up.
    """

    def __init__(
        self,
        endpoint: str,
        reliable: bool = False,
        hwm: int = 4,
        curve: CurveServer | None = None,
        send_timeout: float = 10.0,
    ) -> None:
        self.endpoint = check_endpoint(endpoint)
        self.reliable = reliable
        self.ctx = zmq.Context()
        self.auth: Any = None
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.XPUB_NODROP, 1)
        self.sock.setsockopt(zmq.SNDHWM, 100_000 if reliable else max(1, hwm))
        self.sock.setsockopt(zmq.SNDTIMEO, int(send_timeout * 1000))
        self.sock.setsockopt(zmq.LINGER, int(send_timeout * 1000))
        if curve is not None:
            self._setup_curve(curve)
        elif not _is_loopback(endpoint):
            logger.warning("publishing on %s without CURVE: results and images travel unencrypted", endpoint)
        self.sock.bind(self.endpoint)
        self.seq = 0
        self.sent = 0
        self.dropped = 0
        self.subscribers = 0

    def _setup_curve(self, curve: CurveServer) -> None:
        from zmq import auth as zauth
        from zmq.auth.thread import ThreadAuthenticator

        public, secret = _load_secret(curve.secret_key_file)
        self.auth = ThreadAuthenticator(self.ctx)
        self.auth.start()
        if curve.authorized_clients is not None:
            if not Path(curve.authorized_clients).is_dir():
                raise FileNotFoundError(f"{curve.authorized_clients}: folder of authorised client keys not found")
            self.auth.configure_curve(domain="*", location=str(curve.authorized_clients))
        else:
            self.auth.configure_curve(domain="*", location=zauth.CURVE_ALLOW_ANY)
        self.sock.curve_secretkey = secret
        self.sock.curve_publickey = public
        self.sock.curve_server = True

    def _poll_subscriptions(self, timeout_ms: int = 0) -> None:
        while self.sock.poll(timeout_ms, zmq.POLLIN):
            msg = self.sock.recv()
            self.subscribers += 1 if msg[:1] == b"\x01" else -1
            timeout_ms = 0

    def wait_for_subscriber(self, timeout: float) -> bool:
        """Block until a receiver has subscribed (so the first frames are not lost to the connect delay)."""
        deadline = time.monotonic() + timeout
        while self.subscribers <= 0 and time.monotonic() < deadline:
            self._poll_subscriptions(int(min(100, max(1, (deadline - time.monotonic()) * 1000))))
        return self.subscribers > 0

    def publish(self, meta: Mapping[str, Any], jpeg: bytes | None = None) -> bool:
        """Send one frame's results; returns False when the frame was dropped (live mode, receiver too slow)."""
        self._poll_subscriptions()
        body = dict(meta) | {"seq": self.seq, "t_publish": time.time()}
        parts = [TOPIC, json.dumps(body, separators=(",", ":")).encode()] + ([jpeg] if jpeg is not None else [])
        self.seq += 1
        try:
            self.sock.send_multipart(parts, flags=0 if self.reliable else zmq.NOBLOCK, copy=False)
        except zmq.Again:
            if self.reliable:
                raise TimeoutError(f"{self.endpoint}: receiver did not take frame {body['seq']} in time") from None
            self.dropped += 1
            return False
        self.sent += 1
        return True

    def close(self, end_timeout: float = 2.0) -> None:
        """Send the end-of-stream message (waiting up to ``end_timeout`` s) and close the socket."""
        end = {
            "end": True,
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
        self.sock.close(linger=int(end_timeout * 1000))
        if self.auth is not None:
            self.auth.stop()
        self.ctx.term()


@dataclass
class Message:
    """One received frame: metadata, JPEG bytes (may be empty) and end-to-end latency in ms (now - t_capture)."""

    meta: dict[str, Any]
    jpeg: bytes
    latency_ms: float


@dataclass
class ReceiverStats:
    """Counts of a receiving session. ``dropped`` counts sequence gaps (and frames missing at the end): frames that
    never arrived; ``skipped`` counts frames that arrived but were passed over for a newer one (``recv_latest``)."""

    received: int = 0
    dropped: int = 0
    skipped: int = 0
    published: int | None = None
    first_seq: int | None = None
    ended: bool = False
    latencies_ms: list[float] = field(default_factory=list)
    t_start: float = field(default_factory=time.monotonic)
    t_last: float = 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        span = max(1e-9, self.t_last - self.t_start) if self.received else 0.0

        def pct(q: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))], 3) if lat else None

        return {
            "received": self.received,
            "dropped": self.dropped,
            "published": self.published,
            "first_seq": self.first_seq,
            "ended": self.ended,
            "latency_ms_p50": round(statistics.median(lat), 3) if lat else None,
            "latency_ms_p99": pct(0.99),
            "latency_ms_max": round(lat[-1], 3) if lat else None,
            "fps": round(self.received / span, 2) if span else None,
        }


class ResultReceiver:
    """Connects a SUB socket to a publisher and tracks received / dropped frames and latency.

    Args:
        endpoint: ``tcp://HOST:PORT`` of the publisher.
        curve: CURVE client keys when the publisher uses CURVE.
        hwm: receive high-water mark in messages.
    """

    def __init__(self, endpoint: str, curve: CurveClient | None = None, hwm: int = 1000) -> None:
        self.endpoint = check_endpoint(endpoint)
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, hwm)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            from zmq import auth as zauth

            public, secret = _load_secret(curve.secret_key_file)
            if not Path(curve.server_public_key_file).is_file():
                raise FileNotFoundError(f"{curve.server_public_key_file}: server public key not found")
            server_public, _ = zauth.load_certificate(curve.server_public_key_file)
            self.sock.curve_secretkey = secret
            self.sock.curve_publickey = public
            self.sock.curve_serverkey = server_public
        self.sock.setsockopt(zmq.SUBSCRIBE, TOPIC)
        self.sock.connect(self.endpoint)
        self.stats = ReceiverStats()
        self._last_seq: int | None = None

    def recv(self, timeout: float | None = None) -> Message | None:
        """The next frame; None on timeout or at the end of the stream (then ``stats.ended`` is True)."""
        if self.stats.ended:
            return None
        if not self.sock.poll(None if timeout is None else int(timeout * 1000), zmq.POLLIN):
            return None
        parts = self.sock.recv_multipart()
        now = time.time()
        meta = json.loads(parts[1])
        if meta.get("end"):
            self.stats.ended = True
            self.stats.published = int(meta["published"])
            if self._last_seq is not None:
                self.stats.dropped += max(0, self.stats.published - 1 - self._last_seq)
            return None
        seq = int(meta["seq"])
        if self._last_seq is None:
            self.stats.first_seq = seq
        elif seq > self._last_seq + 1:
            self.stats.dropped += seq - self._last_seq - 1
        self._last_seq = seq
        latency = (now - float(meta.get("t_capture", meta["t_publish"]))) * 1e3
        self.stats.received += 1
        self.stats.t_last = time.monotonic()
        self.stats.latencies_ms.append(latency)
        return Message(meta, parts[2] if len(parts) > 2 else b"", latency)

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
        self.sock.close(linger=0)
        self.ctx.term()
