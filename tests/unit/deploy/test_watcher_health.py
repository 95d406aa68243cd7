"""Issue #17 (reliability) for ``serve --watch``: a bad message does not kill the watcher thread, and ``/health``
says when the watcher is dead or stalled instead of "ok"."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("zmq")
pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient
from tests.helpers.deploy_models import export_tiny_detector
from tests.unit.deploy.test_transport_reliability import MALFORMED, TOPIC, RawSender

from kdinspect.deploy import transport
from kdinspect.deploy.service import create_app


@pytest.fixture(scope="module")
def det_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_detector(tmp_path_factory.mktemp("watch") / "det.onnx")


def _wait(check, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_watcher_survives_malformed_messages(det_model: Path) -> None:
    sender = RawSender()
    app = create_app(det_model, watch=sender.endpoint, threads=1)
    with TestClient(app) as client:
        sender.wait_subscriber()
        sender.frame(0)
        assert _wait(lambda: (client.get("/stream/latest").json()["latest"] or {}).get("seq") == 0)
        for _, parts in MALFORMED:
            sender.send(*parts)
        sender.frame(1)
        assert _wait(lambda: (client.get("/stream/latest").json()["latest"] or {}).get("seq") == 1), (
            "the watcher stopped taking frames after the malformed ones"
        )
        status = client.get("/stream/latest").json()
        assert status["rejected"] == len(MALFORMED) and status["received"] == 2, status
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok", health.json()
        assert health.json()["watch"]["state"] == "receiving"
    sender.close()


class _Boom(BaseException):
    """Something the watcher cannot recover from (kills its thread)."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_health_reports_a_dead_watcher(det_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def die(self, *args, **kwargs):
        raise _Boom("watcher thread killed by the test")

    monkeypatch.setattr(transport.ResultReceiver, "recv_latest", die)
    sender = RawSender()
    app = create_app(det_model, watch=sender.endpoint, threads=1)
    with TestClient(app) as client:
        assert _wait(lambda: not any(t.name == "stream-watcher" and t.is_alive() for t in threading.enumerate()))
        health = client.get("/health")
        assert health.status_code == 503, health.json()
        assert health.json()["status"] == "degraded" and health.json()["watch"]["state"] == "dead", health.json()
        assert "_Boom" in health.json()["watch"]["problem"]
    sender.close()


def test_health_reports_a_stalled_watcher(det_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(self, *args, **kwargs):
        release.wait(30)

    monkeypatch.setattr(transport.ResultReceiver, "recv_latest", hang)
    sender = RawSender()
    app = create_app(det_model, watch=sender.endpoint, threads=1)
    app.state.watcher.stall_s = 0.3
    try:
        with TestClient(app) as client:
            assert _wait(lambda: client.get("/health").status_code == 503, 5)
            watch = client.get("/health").json()["watch"]
            assert watch["state"] == "stalled" and "has not come round" in watch["problem"], watch
            release.set()
            assert _wait(lambda: client.get("/health").status_code == 200, 5)
    finally:
        release.set()
        sender.close()


def test_watcher_follows_a_restarted_sender(det_model: Path) -> None:
    """A sender killed without an end message and started again (new session): the page shows the new stream."""
    sender = RawSender()
    app = create_app(det_model, watch=sender.endpoint, threads=1)
    with TestClient(app) as client:
        sender.wait_subscriber()
        sender.frame(7)
        assert _wait(lambda: (client.get("/stream/latest").json()["latest"] or {}).get("seq") == 7)
        sender.frame(0, session="fedcba9876543210")
        assert _wait(lambda: (client.get("/stream/latest").json()["latest"] or {}).get("seq") == 0)
        assert client.get("/stream/latest").json()["session"] == "fedcba9876543210"
        sender.send(TOPIC, b"{}")
        assert client.get("/health").status_code == 200
    sender.close()
