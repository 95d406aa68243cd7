"""The result stream's wire format, and the checks a receiver makes on every message before using it.

A frame is ``[b"kdinspect", meta_json]`` or ``[b"kdinspect", meta_json, jpeg]``; ``meta`` is a JSON object with
``session`` (a random id per sender run), ``seq`` (0, 1, 2, ...), ``t_publish`` and, optionally, ``t_capture``
(``time.time()`` on the sender). The end of a stream is ``[b"kdinspect", {"end": true, "session": S, "published":
N, ...}]``.

:func:`parse` turns the parts into a :class:`Frame` or an :class:`End`, or raises :class:`Reject` with a short,
stable ``reason`` (the key under which the receiver counts it) and a ``detail`` for the log. Nothing a peer sends
can make it raise anything else.

Receivers acknowledge what they got on the same connection (an XSUB socket may send messages upstream):
``b"A" + {"session": S, "receiver": R, "received": n, "last_seq": s, "end": bool}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "ACK_PREFIX",
    "CLOCK_SKEW_S",
    "MAX_DEPTH",
    "MAX_LATENCY_S",
    "MAX_META_BYTES",
    "TOPIC",
    "End",
    "Frame",
    "Reject",
    "check_endpoint",
    "encode_ack",
    "is_loopback",
    "latency_ms",
    "parse",
    "parse_ack",
]

TOPIC = b"kdinspect"
ACK_PREFIX = b"A"
MAX_META_BYTES = 1 << 20  # 1 MiB of JSON metadata per frame
MAX_DEPTH = 32  # nesting of the metadata (real frames use 4)
MAX_SEQ = 1 << 62
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
CLOCK_SKEW_S = 1.0  # a latency below -1 s means the clocks disagree (or the timestamp is bogus)
MAX_LATENCY_S = 3600.0  # a frame older than an hour carries an impossible timestamp


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


def is_loopback(endpoint: str) -> bool:
    url = urlparse(endpoint)
    return url.scheme != "tcp" or (url.hostname or "") in _LOOPBACK


class Reject(ValueError):
    """A message that is not a valid frame or end. ``reason``: a short key (counted); ``detail``: for the log."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass
class Frame:
    meta: dict[str, Any]
    jpeg: bytes
    seq: int
    session: str


@dataclass
class End:
    published: int
    session: str
    meta: dict[str, Any]


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _depth(obj: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            break
        if isinstance(value, dict):
            stack.extend((v, d + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, d + 1) for v in value)
    return deepest


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _json_object(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_META_BYTES:
        raise Reject("too_large", f"metadata of {len(raw)} bytes (limit {MAX_META_BYTES})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Reject("not_utf8", f"metadata is not UTF-8 ({err.reason} at byte {err.start})") from None
    try:
        meta = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise Reject("too_deep", f"metadata nested deeper than Python can parse (limit {MAX_DEPTH})") from None
    except ValueError as err:
        raise Reject("not_json", f"metadata is not JSON ({err})") from None
    if not isinstance(meta, dict):
        raise Reject("not_object", f"metadata is a JSON {type(meta).__name__}, not an object")
    if _depth(meta) > MAX_DEPTH:
        raise Reject("too_deep", f"metadata nested deeper than {MAX_DEPTH} levels")
    return meta


def parse(parts: list[bytes]) -> Frame | End:
    """Check one multipart message; raises :class:`Reject` for anything but a well-formed frame or end."""
    if len(parts) not in (2, 3):
        raise Reject("parts", f"{len(parts)} part(s); expected 2 (topic, metadata) or 3 (+ JPEG)")
    if parts[0] != TOPIC:
        raise Reject("topic", f"topic {parts[0][:32]!r}, expected {TOPIC!r}")
    meta = _json_object(parts[1])
    session = meta.get("session")
    if not isinstance(session, str) or not 0 < len(session) <= 64:
        raise Reject("session", f"missing or invalid sender session id: {session!r:.40}")
    if "end" in meta:
        if meta["end"] is not True or len(parts) != 2:
            raise Reject("end", f"malformed end message (end={meta['end']!r:.20}, {len(parts)} parts)")
        published = meta.get("published")
        if not _is_int(published) or not 0 <= published <= MAX_SEQ:
            raise Reject("end_published", f"end message without a valid 'published' count: {published!r:.40}")
        return End(published, session, meta)
    seq = meta.get("seq")
    if not _is_int(seq) or not 0 <= seq <= MAX_SEQ:
        raise Reject("seq", f"missing or invalid seq (a non-negative integer): {seq!r:.40}")
    for key in ("t_publish", "t_capture"):
        if (key in meta or key == "t_publish") and not _is_time(meta.get(key)):
            raise Reject(key, f"frame {seq}: {key} is not a time in seconds: {meta.get(key)!r:.40}")
    return Frame(meta, parts[2] if len(parts) == 3 else b"", seq, session)


def latency_ms(meta: dict[str, Any], now: float) -> float | None:
    """``now - t_capture`` (or ``t_publish``) in ms; None when the clocks are impossible: capture after publish,
    a latency below ``-CLOCK_SKEW_S`` or above ``MAX_LATENCY_S``."""
    t_pub = float(meta["t_publish"])
    t_cap = float(meta.get("t_capture", t_pub))
    if t_cap > t_pub + 1e-3:
        return None
    lat = now - t_cap
    if not -CLOCK_SKEW_S <= lat <= MAX_LATENCY_S:
        return None
    return lat * 1e3


def encode_ack(session: str, receiver: str, received: int, last_seq: int | None, end: bool) -> bytes:
    body = {"session": session, "receiver": receiver, "received": received, "last_seq": last_seq, "end": end}
    return ACK_PREFIX + json.dumps(body, separators=(",", ":")).encode()


def parse_ack(msg: bytes) -> dict[str, Any] | None:
    """The acknowledgement in an upstream message, or None when it is not a well-formed one."""
    if not msg.startswith(ACK_PREFIX) or len(msg) > 1024:
        return None
    try:
        ack = json.loads(msg[1:].decode("utf-8"), parse_constant=_no_constants)
    except (ValueError, RecursionError):
        return None
    if not (
        isinstance(ack, dict)
        and isinstance(ack.get("session"), str)
        and isinstance(ack.get("receiver"), str)
        and _is_int(ack.get("received"))
        and ack["received"] >= 0
    ):
        return None
    return ack
