"""Issue #17 (reliability) for the result stream: malformed and spoofed messages, impossible clocks, what reliable
mode claims when the receiver leaves, and SIGTERM on ``stream`` / ``receive``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

zmq = pytest.importorskip("zmq")
pytest.importorskip("onnxruntime")

from tests.helpers.runs import subprocess_env  # noqa: E402
from tests.helpers.servers import free_port  # noqa: E402

from kdinspect.deploy.receive import receive_stream  # noqa: E402
from kdinspect.deploy.transport import ResultPublisher, ResultReceiver  # noqa: E402

TOPIC = b"kdinspect"
SESSION = "0123456789abcdef"


class RawSender:
    """A hand-driven XPUB socket: sends whatever multipart message a test writes."""

    def __init__(self) -> None:
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, 1000)
        self.sock.bind(self.endpoint)

    def wait_subscriber(self, timeout: float = 30) -> None:
        assert self.sock.poll(int(timeout * 1000)), "no receiver subscribed"
        assert self.sock.recv()[:1] == b"\x01"

    def send(self, *parts: bytes) -> None:
        self.sock.send_multipart(list(parts))

    def frame(self, seq: int, **fields: Any) -> None:
        now = time.time()
        meta = {"session": SESSION, "seq": seq, "t_capture": now, "t_publish": now, "result": {}} | fields
        self.send(TOPIC, json.dumps(meta).encode(), b"\xff\xd8jpeg\xff\xd9")

    def end(self, published: int, session: str = SESSION) -> None:
        self.send(TOPIC, json.dumps({"end": True, "published": published, "session": session}).encode())

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


def _meta(**fields: Any) -> bytes:
    now = time.time()
    return json.dumps({"session": SESSION, "seq": 5, "t_capture": now, "t_publish": now} | fields).encode()


MALFORMED: list[tuple[str, list[bytes]]] = [
    ("one part", [TOPIC]),
    ("four parts", [TOPIC, _meta(), b"jpeg", b"extra"]),
    ("wrong topic", [b"kdinspectX", _meta()]),
    ("not JSON", [TOPIC, b"{not json"]),
    ("binary", [TOPIC, b"\xff\xfe\x00\x81\x90"]),
    ("JSON array", [TOPIC, b"[1, 2, 3]"]),
    ("JSON null", [TOPIC, b"null"]),
    ("missing seq", [TOPIC, json.dumps({"session": SESSION, "t_publish": time.time()}).encode()]),
    ("string seq", [TOPIC, _meta(seq="7")]),
    ("negative seq", [TOPIC, _meta(seq=-3)]),
    ("string t_capture", [TOPIC, _meta(t_capture="yesterday")]),
    ("NaN t_publish", [TOPIC, _meta().replace(b'"t_publish": ', b'"t_publish": NaN, "x": ')]),
    ("deep nesting", [TOPIC, b'{"seq": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"]),
    ("end without published", [TOPIC, json.dumps({"end": True, "session": SESSION}).encode()]),
    ("no session", [TOPIC, json.dumps({"seq": 6, "t_publish": time.time()}).encode()]),
    ("too large", [TOPIC, _meta(pad="x" * (2 << 20))]),
]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "kdinspect", *args]


def _receive_in_thread(endpoint: str, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["summary"] = receive_stream(endpoint, **kwargs)
        except BaseException as err:  # the test reports it
            box["error"] = repr(err)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, box


def test_receive_cli_survives_every_kind_of_malformed_message(tmp_path: Path) -> None:
    """16 kinds of bad message: ``kdinspect receive`` keeps running, counts each under its reason, and writes its
    summary when the real end arrives."""
    sender = RawSender()
    summary_file = tmp_path / "summary.json"
    rx = subprocess.Popen(
        _cli("receive", "--connect", sender.endpoint, "--summary", str(summary_file), "--timeout", "20"),
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sender.wait_subscriber()
        sender.frame(0)
        for _, parts in MALFORMED:
            sender.send(*parts)
        sender.frame(1)
        sender.end(2)
        _, err = rx.communicate(timeout=60)
    finally:
        rx.kill()
        sender.close()
    assert rx.returncode == 0, err
    summary = json.loads(summary_file.read_text())
    assert summary["received"] == 2 and summary["dropped"] == 0 and summary["ended"], summary
    assert summary["rejected"] == len(MALFORMED) == sum(summary["rejects"].values()), summary
    assert set(summary["rejects"]) >= {"parts", "topic", "not_json", "not_utf8", "not_object", "seq", "too_deep"}
    assert "rejected message" in err and "t_capture" in err  # each reject is logged with its reason


def test_spoofed_end_does_not_stop_the_receiver() -> None:
    """An end message stops a receiver only when it carries the session of the frames received and a count that
    covers them; a stray ``{"end": true}`` is counted as a reject."""
    sender = RawSender()
    thread, box = _receive_in_thread(sender.endpoint, timeout=10)
    sender.wait_subscriber()
    sender.frame(0)
    sender.send(TOPIC, b'{"end": true, "published": 1}')
    sender.end(1, session="intruder")
    sender.end(0)  # right session, but fewer frames than this receiver has seen
    sender.frame(1)
    sender.end(2)
    thread.join(30)
    sender.close()
    summary = box.get("summary")
    assert summary is not None, box
    assert summary["received"] == 2 and summary["ended"] and summary["published"] == 2, summary
    assert summary["rejects"] == {"session": 1, "end_session": 1, "end_count": 1}, summary


def test_impossible_clocks_are_left_out_of_latency() -> None:
    """A frame with ``t_publish = 0`` counts as received, but its 1.8e12 ms 'latency' is left out (and said so)."""
    sender = RawSender()
    thread, box = _receive_in_thread(sender.endpoint, timeout=10)
    sender.wait_subscriber()
    sender.frame(0)
    bogus = {"session": SESSION, "seq": 1, "t_publish": 0.0, "result": {}}
    sender.send(TOPIC, json.dumps(bogus).encode())
    sender.frame(2, t_capture=time.time() + 3600)  # captured in the future
    sender.frame(3)
    sender.end(4)
    thread.join(30)
    sender.close()
    summary = box.get("summary")
    assert summary is not None, box
    assert summary["received"] == 4 and summary["latency_excluded"] == 2, summary
    assert summary["latency_ms_max"] < 10_000, summary
    assert "impossible" in summary["latency_note"]


def test_reliable_sender_claims_only_what_the_receiver_acknowledged() -> None:
    """``--reliable`` with a receiver that leaves after 50 frames: the sender reports 50 acknowledged and the rest
    as sent to the socket but unconfirmed (or not sent), never as delivered."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub = ResultPublisher(endpoint, reliable=True, send_timeout=0.5)
    got: list[int] = []

    def leave_after_50() -> None:
        rx = ResultReceiver(endpoint)
        while len(got) < 50 and (msg := rx.recv(timeout=20)) is not None:
            got.append(msg.meta["seq"])
        rx.close()

    thread = threading.Thread(target=leave_after_50, daemon=True)
    thread.start()
    assert pub.wait_for_subscriber(20)
    for i in range(200):
        pub.publish({"t_capture": time.time(), "i": i}, b"\xff\xd8jpeg")
        if i == 100:
            thread.join(20)  # the receiver has gone: the next 99 frames find nobody
            deadline = time.monotonic() + 10
            while pub.subscribers > 0 and time.monotonic() < deadline:  # (once its unsubscription has arrived)
                pub._poll_upstream(20)
    report = pub.close(end_timeout=1.0)
    assert got == list(range(50))
    assert report["acknowledged"] == 50, report
    assert report["sent_to_socket"] + report["not_sent"] == 200, report
    # every frame after the receiver left (101..199) is not sent; frames between its 50th and its unsubscription
    # reaching the sender may be either, depending on timing
    assert report["unconfirmed"] == report["sent_to_socket"] - 50 and report["not_sent"] >= 99, report
    assert "delivered" not in report


def _wait_for_line(proc: subprocess.Popen, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if needle in line:
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"{needle!r} not seen before exit / timeout")


def test_receive_writes_its_summary_on_sigterm(tmp_path: Path) -> None:
    sender = RawSender()
    summary_file = tmp_path / "summary.json"
    rx = subprocess.Popen(
        _cli("receive", "--connect", sender.endpoint, "--summary", str(summary_file)),
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sender.wait_subscriber()
        sender.frame(0)
        time.sleep(0.3)
        rx.send_signal(signal.SIGTERM)
        out, err = rx.communicate(timeout=30)
    finally:
        rx.kill()
        sender.close()
    assert rx.returncode == 0, (rx.returncode, err)
    summary = json.loads(summary_file.read_text())
    assert summary["received"] == 1 and not summary["ended"] and summary["stopped_by"] == "SIGTERM", summary
    assert json.loads(out.splitlines()[-1]) == summary


def test_stream_prints_its_summary_on_sigterm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In process (SIGTERM to this process once the first frame is out); a fallback handler keeps pytest alive
    should the command not handle SIGTERM itself."""
    import os

    import cv2
    from tests.helpers.deploy_models import export_tiny_detector, square_image

    from kdinspect.cli.main import main

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.png"), square_image((48, 64)))
    model = export_tiny_detector(tmp_path / "det.onnx")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    unhandled: list[int] = []

    def fallback(signum: int, frame: Any) -> None:
        unhandled.append(signum)
        raise RuntimeError("SIGTERM reached the test's fallback handler: the command does not handle it")

    previous = signal.signal(signal.SIGTERM, fallback)
    box: dict[str, Any] = {}

    def watch() -> None:
        rx = ResultReceiver(endpoint)
        box["first"] = rx.recv(timeout=60)
        os.kill(os.getpid(), signal.SIGTERM)
        while rx.recv(timeout=5) is not None:
            pass
        box["ended"] = rx.stats.ended
        rx.close()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    args = ["--model", str(model), "--source", str(frames), "--loop", "--fps", "50", "--threads", "1"]
    try:
        rc = main(["stream", *args, "--publish", endpoint, "--wait-subscriber", "30"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    thread.join(30)
    assert not unhandled and rc == 0 and box["first"] is not None
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["processed"] >= 1 and summary["stopped_by"] == "SIGTERM", summary
    assert box["ended"]  # the end message went out


def test_latency_samples_stay_bounded_on_a_long_stream() -> None:
    """``serve --watch`` lives for weeks: the receiver keeps a bounded, uniform sample of latencies (the max stays
    exact) instead of one float per frame for ever."""
    from kdinspect.deploy.receiver import ReceiverStats

    stats = ReceiverStats()
    for i in range(300_000):
        stats.add_latency(float(i % 1000))
    stats.add_latency(5000.0)
    stats.received = 300_001
    summary = stats.summary()
    assert len(stats.latencies_ms) <= 100_000
    assert summary["latency_ms_max"] == 5000.0 and 450 <= summary["latency_ms_p50"] <= 550, summary


def test_stream_statistics_stay_bounded_on_a_long_run() -> None:
    """``kdinspect stream`` on a camera runs for weeks: its latency / inference samples are bounded too."""
    from kdinspect.deploy.stream import StreamStats

    stats = StreamStats()
    for i in range(250_000):
        stats.latency_ms.add(float(i % 100))
        stats.inference_ms.add(1.0)
    stats.latency_ms.add(900.0)
    stats.processed = 250_001
    summary = stats.summary()
    assert len(stats.latency_ms) <= 100_000 and len(stats.inference_ms) <= 100_000
    assert summary["latency_ms_max"] == 900.0 and summary["inference_ms_p50"] == 1.0, summary
