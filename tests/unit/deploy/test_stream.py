"""Live stream over loopback: newest-frame source, 1,000 frames published and received, lossless mode, CURVE."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("zmq")

from tests.helpers.deploy_models import export_tiny_detector, square_image
from tests.helpers.runs import subprocess_env
from tests.helpers.servers import free_port

from kdinspect.cli.main import main
from kdinspect.deploy import OrtModel
from kdinspect.deploy.sources import open_source
from kdinspect.deploy.stream import run_stream
from kdinspect.deploy.transport import (
    CurveClient,
    CurveServer,
    ResultPublisher,
    ResultReceiver,
    create_curve_keys,
)


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stream")
    video = root / "frames.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    base = cv2.cvtColor(square_image((48, 64)), cv2.COLOR_RGB2BGR)
    for i in range(1000):
        writer.write(np.roll(base, i % 64, axis=1))
    writer.release()
    return {"video": video, "model": export_tiny_detector(root / "det.onnx")}


def _receive_in_thread(endpoint: str, delay: float, out: dict) -> threading.Thread:
    def work() -> None:
        rx = ResultReceiver(endpoint)
        shown = []
        while (msg := rx.recv_latest(timeout=20)) is not None:
            shown.append(msg.latency_ms)
            time.sleep(delay)  # a slow display
        out["stats"], out["shown_latency"] = rx.stats, shown
        rx.close()

    t = threading.Thread(target=work, daemon=True)
    t.start()
    return t


def test_live_mode_counts_every_drop_without_latency_build_up(assets: dict[str, Path]) -> None:
    """A slow receiver on the live link: it shows the newest frames (stale ones skipped), latency stays bounded,
    and received + dropped == published exactly."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub = ResultPublisher(endpoint, reliable=False, hwm=2)
    out: dict = {}
    thread = _receive_in_thread(endpoint, delay=0.02, out=out)
    assert pub.wait_for_subscriber(20)
    with open_source(str(assets["video"]), every_frame=True) as src:
        summary = run_stream(OrtModel(assets["model"], threads=1), src, pub)
    pub.close()
    thread.join(60)
    stats, shown = out["stats"], out["shown_latency"]
    assert summary["processed"] == 1000 and stats.published == 1000 and stats.ended
    assert stats.received + stats.dropped == 1000
    assert stats.dropped == summary["publish_dropped"]
    assert stats.skipped > 0 and len(shown) < 1000  # the slow display skipped stale frames...
    assert sorted(shown)[int(0.9 * len(shown))] < 1000  # ...so what it shows stays fresh (seconds without skipping)


def test_reliable_mode_cli_loses_nothing(assets: dict[str, Path], tmp_path: Path) -> None:
    """``kdinspect stream --reliable`` -> ``kdinspect receive`` (another process): all 1,000 frames arrive."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    summary_file, log = tmp_path / "summary.json", tmp_path / "log.jsonl"
    rx = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kdinspect",
            "receive",
            "--connect",
            endpoint,
            "--summary",
            str(summary_file),
            "--log",
            str(log),
            "--save",
            str(tmp_path / "frames"),
            "--timeout",
            "30",
        ],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert (
            main(
                [
                    "stream",
                    "--model",
                    str(assets["model"]),
                    "--source",
                    str(assets["video"]),
                    "--publish",
                    endpoint,
                    "--reliable",
                    "--every-frame",
                    "--wait-subscriber",
                    "30",
                    "--threads",
                    "1",
                ]
            )
            == 0
        )
        _, err = rx.communicate(timeout=60)
    finally:
        rx.kill()
    assert rx.returncode == 0, err
    stats = json.loads(summary_file.read_text())
    assert stats["received"] == 1000 and stats["dropped"] == 0 and stats["published"] == 1000
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [m["seq"] for m in lines] == list(range(1000))
    assert {"t_capture", "t_publish", "result", "latency_ms"} <= set(lines[0])
    assert len(lines[0]["result"]["detections"]) == 2
    assert len(list((tmp_path / "frames").glob("*.jpg"))) == 1000
    # the summary's latencies are those of the logged frames: receive time - capture time, each after the publish
    logged = sorted(m["latency_ms"] for m in lines)
    assert all(m["latency_ms"] >= (m["t_publish"] - m["t_capture"]) * 1e3 - 1.0 for m in lines)
    assert logged[0] > 0 and logged[-1] < 60_000  # the receiver's own timeout bounds them
    assert stats["latency_ms_p50"] == pytest.approx(statistics.median(logged), abs=0.01)
    assert stats["latency_ms_max"] == pytest.approx(logged[-1], abs=0.01)
    assert stats["latency_ms_p50"] <= stats["latency_ms_p99"] <= stats["latency_ms_max"]


def test_newest_frame_source_drops_stale_frames(assets: dict[str, Path]) -> None:
    """A slow consumer on a real-time source gets recent frames; the stale ones are counted, not queued."""
    with open_source(str(assets["video"]), fps=500) as src:
        got = []
        for _ in range(10):
            frame = src.get(timeout=5)
            assert frame is not None
            got.append(frame.index)
            assert time.time() - frame.t_capture < 0.05  # never an old frame
            time.sleep(0.03)
    assert got == sorted(got) and got[-1] - got[0] > 30 and src.dropped > 0


def test_live_source_reconnects_after_the_stream_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera/RTSP source that stops delivering is reopened; it ends after ``reconnect`` failed attempts in a row."""
    from kdinspect.deploy import sources

    opened: list[int] = []

    class FlakyCamera:
        def __init__(self, spec: str, fps: float | None) -> None:
            opened.append(1)
            if len(opened) > 3:  # the camera is gone for good after two outages
                raise OSError(f"{spec}: OpenCV could not open this source")
            self.live, self.fps, self.left = True, 30.0, 3

        def read(self) -> np.ndarray | None:
            self.left -= 1
            return np.zeros((4, 4, 3), np.uint8) if self.left >= 0 else None

        def close(self) -> None:
            pass

    monkeypatch.setattr(sources, "_Reader", FlakyCamera)
    src = sources.FrameSource("rtsp://camera/stream", every_frame=True, reconnect=2, reconnect_delay=0.01)
    frames = []
    while (frame := src.get(timeout=5)) is not None:
        frames.append(frame.index)
    src.close()
    assert frames == list(range(9)) and src.reconnects == 2 and len(opened) == 5


def test_unreachable_source_is_a_clear_error() -> None:
    with pytest.raises((OSError, FileNotFoundError), match="nope"):
        open_source("/no/such/dir/nope")


def test_endpoints_default_to_loopback() -> None:
    from kdinspect.deploy.transport import check_endpoint

    assert check_endpoint("5555") == check_endpoint(":5555") == "tcp://127.0.0.1:5555"
    assert check_endpoint("tcp://0.0.0.0:7000") == "tcp://0.0.0.0:7000"
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        check_endpoint("tcp://nowhere")


def test_curve_encrypted_and_authenticated(tmp_path: Path) -> None:
    keys = create_curve_keys(tmp_path / "keys")
    stranger = create_curve_keys(tmp_path / "other")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub = ResultPublisher(endpoint, reliable=True, curve=CurveServer(keys["server_secret"], keys["authorized_clients"]))
    good = ResultReceiver(endpoint, CurveClient(keys["server_public"], keys["client_secret"]))
    bad = ResultReceiver(endpoint, CurveClient(keys["server_public"], stranger["client_secret"]))
    assert pub.wait_for_subscriber(10)
    for i in range(5):
        pub.publish({"t_capture": time.time(), "i": i}, b"\xff\xd8jpeg")
    msgs = [good.recv(timeout=5) for _ in range(5)]
    assert [m.meta["i"] for m in msgs] == list(range(5)) and msgs[0].jpeg == b"\xff\xd8jpeg"
    assert bad.recv(timeout=0.5) is None  # not an authorised client key: nothing arrives
    pub.close(0.5)
    good.close()
    bad.close()


def test_predict_onnx_on_a_video(assets: dict[str, Path], tmp_path: Path) -> None:
    assert (
        main(
            [
                "predict",
                str(assets["model"]),
                str(assets["video"]),
                "--out",
                str(tmp_path / "p"),
                "--video-stride",
                "100",
            ]
        )
        == 0
    )
    results = json.loads((tmp_path / "p" / "results.json").read_text())["results"]
    assert [r["frame"] for r in results] == list(range(0, 1000, 100))
    assert all(len(r["detections"]) == 2 for r in results)
    assert len(list((tmp_path / "p" / "overlays").glob("*.jpg"))) == 10
