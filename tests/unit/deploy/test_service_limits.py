"""Issue #17 (reliability) for ``serve``: pixel budget before decoding, bounded concurrent decodes, stalled uploads
and idle connections timed out, clients leaving mid-upload, ``/docs`` behind the API key, the key off the command
line."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from tests.helpers.deploy_models import export_tiny_detector, square_image  # noqa: E402
from tests.helpers.servers import serve_in_thread  # noqa: E402

from kdinspect.cli.main import main  # noqa: E402
from kdinspect.deploy import service  # noqa: E402
from kdinspect.deploy.service import ServiceLimits, create_app  # noqa: E402


@pytest.fixture(scope="module")
def det_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_detector(tmp_path_factory.mktemp("limits") / "det.onnx")


def _jpeg(img: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _blank_png(w: int, h: int) -> bytes:
    """A complete, valid black RGB PNG (a few hundred KB for 6300x6300), compressed row by row."""
    comp, row = zlib.compressobj(9), b"\x00" + bytes(3 * w)
    idat = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _huge_tiff(w: int, h: int) -> bytes:
    """A 2x2 TIFF whose header claims ``w`` x ``h`` (the size only PIL's header reader finds)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buf, "TIFF")
    data = bytearray(buf.getvalue())
    (ifd,) = struct.unpack("<I", data[4:8])
    (n,) = struct.unpack("<H", data[ifd : ifd + 2])
    for i in range(n):
        at = ifd + 2 + 12 * i
        tag, typ = struct.unpack("<HH", data[at : at + 4])
        if tag in (256, 257) and typ == 4:
            data[at + 8 : at + 12] = struct.pack("<I", w if tag == 256 else h)
    return bytes(data)


@pytest.fixture
def no_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(cv2, "imdecode", refuse)


@pytest.mark.parametrize(
    ("name", "make", "size"), [("big.png", lambda: _blank_png(6300, 6300), "6300x6300"), ("big.tif", None, "9000x9000")]
)
def test_large_images_refused_before_decode(det_model: Path, name: str, make: Any, size: str, request) -> None:
    """Default limits: a 6300x6300 PNG (~40 Mpx, ~1.5 GB at the decoding peak) and a TIFF whose size only PIL reads
    from the header are refused with 413 naming the size; nothing is decoded."""
    data = make() if make else _huge_tiff(9000, 9000)
    assert len(data) < 400_000
    request.getfixturevalue("no_decode")
    with TestClient(create_app(det_model, threads=1)) as client:
        r = client.post("/predict", files={"file": (name, data, "image/png")})
    assert r.status_code == 413, r.text
    assert size in r.json()["detail"] and "pixels" in r.json()["detail"]


def test_concurrent_decodes_are_bounded(det_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """16 requests at once: never more than ``max_concurrent`` (2) images decoded / held at the same time."""
    active, peak, lock = [0], [0], threading.Lock()
    real = service.decode_image

    def counting(*args: Any, **kwargs: Any) -> np.ndarray:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.05)
            return real(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(service, "decode_image", counting)
    limits = ServiceLimits()
    limits.max_concurrent = 2
    jpeg = _jpeg(square_image())

    async def burst(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            rs = await asyncio.gather(*(client.post("/predict", files={"file": ("a.jpg", jpeg)}) for _ in range(16)))
        return [r.status_code for r in rs]

    with serve_in_thread(create_app(det_model, limits=limits, threads=1)) as url:
        codes = asyncio.run(burst(url))
    assert codes == [200] * 16
    assert peak[0] == 2, peak


def _read_response(s: socket.socket, first: bytes, wait: float) -> bytes:
    """The whole response: headers and ``content-length`` bytes of body (they may arrive in separate packets)."""
    answer, deadline = first, time.monotonic() + wait
    while time.monotonic() < deadline:
        head, sep, body = answer.partition(b"\r\n\r\n")
        fields = dict(line.partition(b":")[::2] for line in head.split(b"\r\n")[1:])
        length = int(fields.get(b"content-length", b"0").strip() or 0)
        if sep and len(body) >= length:
            break
        try:
            chunk = s.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            break
        answer += chunk
    return answer


def _raw_http(url: str, data: bytes, wait: float) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as s:
        s.sendall(data)
        try:
            return _read_response(s, s.recv(4096), wait)
        except TimeoutError:
            return b"<no answer>"


def test_stalled_upload_gets_408(det_model: Path) -> None:
    limits = ServiceLimits()
    limits.read_timeout_s = 0.5
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n"
    with serve_in_thread(create_app(det_model, limits=limits, threads=1)) as url:
        t0 = time.monotonic()
        answer = _raw_http(url, head + b"\xff\xd8\xff" + bytes(100), wait=5)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"upload stalled" in answer and time.monotonic() - t0 < 4
        assert httpx.get(f"{url}/health").status_code == 200


def test_trickling_upload_gets_408(det_model: Path) -> None:
    """A body that keeps arriving, 20 bytes every 0.2 s, but is not complete after ``upload_timeout_s``."""
    limits = ServiceLimits()
    limits.read_timeout_s, limits.upload_timeout_s = 0.5, 1.0
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n"
    with serve_in_thread(create_app(det_model, limits=limits, threads=1)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(head)
            s.settimeout(0.2)
            t0, answer = time.monotonic(), b""
            while time.monotonic() - t0 < 5 and not answer:
                try:
                    s.sendall(bytes(20))
                    answer = s.recv(4096)
                except TimeoutError:
                    continue
            elapsed = time.monotonic() - t0
            answer = _read_response(s, answer, 2)
        assert answer.startswith(b"HTTP/1.1 408") and b"too slow" in answer, answer[:200]
        assert elapsed < 3


def test_idle_connections_are_closed(det_model: Path) -> None:
    """The server ``kdinspect serve`` runs closes connections that send nothing (or stop mid-headers)."""
    import uvicorn

    from kdinspect.deploy.httpserver import server_config

    server = uvicorn.Server(server_config(create_app(det_model, threads=1), "127.0.0.1", 0, idle_timeout=0.5))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        conns = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(30)]
        conns[0].sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        t0 = time.monotonic()
        trickle = conns[1]
        trickle.settimeout(0.2)
        try:  # a header byte every 0.1 s never completes the request: closed all the same
            for byte in b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * 100:
                trickle.sendall(bytes([byte]))
                time.sleep(0.1)
                if time.monotonic() - t0 > 4:
                    break
        except OSError:  # closed under our feet
            pass
        assert time.monotonic() - t0 < 4, "the trickling connection was not closed"
        closed = [c.recv(100) == b"" for c in conns[:1] + conns[2:]]
        assert all(closed) and time.monotonic() - t0 < 5, closed
        for c in conns:
            c.close()
        ok = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert ok.status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)


def test_client_leaving_mid_upload_is_not_an_error(det_model: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The ASGI app, called the way uvicorn calls it: a body that stops with ``http.disconnect`` raises nothing
    (uvicorn logs a traceback for anything the app raises)."""
    app = create_app(det_model, threads=1)
    events = [
        {"type": "http.request", "body": b"\xff\xd8\xff" + bytes(100), "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return events.pop(0) if events else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"image/jpeg"), (b"content-length", b"100000")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    with caplog.at_level(logging.INFO, logger="kdinspect"):
        asyncio.run(app(scope, receive, send))
    assert all(m.get("status", 0) != 500 for m in sent), sent
    assert "disconnected during the upload" in caplog.text


def test_docs_and_openapi_need_the_key(det_model: Path) -> None:
    with TestClient(create_app(det_model, api_key="s3cret", threads=1)) as client:
        assert client.get("/docs").status_code == 401
        assert client.get("/openapi.json").status_code == 401
        assert client.get("/openapi.json", headers={"X-API-Key": "s3cret"}).json()["info"]["title"] == "kdinspect"
        page = client.get("/docs?key=s3cret")
        assert page.status_code == 200 and "/openapi.json?key=s3cret" in page.text
    with TestClient(create_app(det_model, threads=1)) as client:  # no key: the docs stay open
        assert client.get("/docs").status_code == 200 and client.get("/openapi.json").status_code == 200


def test_api_key_from_a_file_and_a_warning_for_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}

    def fake_create_app(model: Any, api_key: Any = None, *args: Any, **kwargs: Any) -> str:
        seen["api_key"] = api_key
        return "app"

    monkeypatch.setattr(service, "create_app", fake_create_app)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: None)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    monkeypatch.delenv("KDINSPECT_API_KEY", raising=False)
    key_file = tmp_path / "key.txt"
    key_file.write_text("from-a-file\n")
    assert main(["serve", "--model", "m.onnx", "--api-key-file", str(key_file)]) == 0
    assert seen["api_key"] == "from-a-file" and "process list" not in caplog.text
    with caplog.at_level(logging.WARNING):
        assert main(["serve", "--model", "m.onnx", "--api-key", "on-the-command-line"]) == 0
    assert seen["api_key"] == "on-the-command-line" and "process list" in caplog.text
