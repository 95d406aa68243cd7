"""HTTP service: results, limits, API key, malformed input (4xx with a message, service still up), bounded load."""

from __future__ import annotations

import asyncio
import json
import statistics
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")
httpx = pytest.importorskip("httpx")

from tests.helpers.deploy_models import CLASSES, export_tiny_detector, square_image  # noqa: E402
from tests.helpers.servers import ARTIFACTS, serve_in_thread  # noqa: E402

from kdinspect.deploy.service import ServiceLimits, create_app  # noqa: E402


def _jpeg(img: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes()


def _png_header(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


@pytest.fixture(scope="module")
def det_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_detector(tmp_path_factory.mktemp("svc") / "det.onnx")


@pytest.fixture(scope="module")
def url(det_model: Path):
    app = create_app(det_model, limits=ServiceLimits(max_bytes=2_000_000, max_pixels=4096 * 4096), threads=1)
    with serve_in_thread(app) as base:
        yield base


def test_predict_health_model(url: str) -> None:
    jpeg = _jpeg(square_image((96, 128)))
    r = httpx.post(f"{url}/predict?overlay=true", files={"file": ("a.jpg", jpeg, "image/jpeg")}, timeout=30)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["task"] == "detection" and out["width"] == 128 and out["file"] == "a.jpg"
    assert sorted(d["class"] for d in out["detections"]) == sorted(CLASSES)
    assert cv2.imdecode(
        np.frombuffer(__import__("base64").b64decode(out["overlay_jpeg_base64"]), np.uint8), 1
    ).shape == (96, 128, 3)
    raw = httpx.post(f"{url}/predict", content=jpeg, headers={"Content-Type": "image/jpeg"}, timeout=30).json()
    assert len(raw["detections"]) == 2 and "overlay_jpeg_base64" not in raw
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    info = httpx.get(f"{url}/model").json()
    assert info["classes"] == CLASSES and info["limits"]["max_bytes"] == 2_000_000
    assert "Inspect an image" in httpx.get(url).text


def _truncated_jpeg() -> bytes:
    return _jpeg(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))[:-300]


MALFORMED = [
    ("empty multipart file", {"files": {"file": ("e.jpg", b"", "image/jpeg")}}, 400, "empty input"),
    ("empty raw body", {"content": b"", "headers": {"Content-Type": "image/jpeg"}}, 400, "empty input"),
    ("text bytes", {"files": {"file": ("t.jpg", b"this is not an image at all", "image/jpeg")}}, 415, "not an image"),
    ("truncated jpeg", {"files": {"file": ("t.jpg", _truncated_jpeg(), "image/jpeg")}}, 422, "truncated JPEG"),
    (
        "20000x20000 header",
        {"files": {"file": ("big.png", _png_header(20000, 20000) + bytes(64), "image/png")}},
        413,
        "20000x20000",
    ),
    ("wrong field", {"files": {"image": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}}, 422, "field named 'file'"),
    ("wrong content type", {"content": b"{}", "headers": {"Content-Type": "application/json"}}, 415, "Content-Type"),
    (
        "body over limit",
        {"content": b"\xff\xd8\xff" + bytes(2_100_000), "headers": {"Content-Type": "image/jpeg"}},
        413,
        "exceeds the limit",
    ),
    (
        "broken multipart",
        {"content": b"--xx\r\nnope", "headers": {"Content-Type": "multipart/form-data; boundary=xx"}},
        422,
        "field named 'file'",
    ),
]


@pytest.mark.parametrize(("case", "kwargs", "status", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_input_gets_clear_4xx_and_service_survives(
    url: str, case: str, kwargs: dict, status: int, message: str
) -> None:
    r = httpx.post(f"{url}/predict", timeout=30, **kwargs)
    assert r.status_code == status, (case, r.status_code, r.text)
    assert message in r.json()["detail"], r.json()
    ok = httpx.post(f"{url}/predict", files={"file": ("a.jpg", _jpeg(square_image()), "image/jpeg")}, timeout=30)
    assert ok.status_code == 200 and httpx.get(f"{url}/health").status_code == 200


def test_api_key(det_model: Path) -> None:
    with serve_in_thread(create_app(det_model, api_key="s3cret", threads=1)) as base:
        jpeg = _jpeg(square_image())
        assert httpx.post(f"{base}/predict", files={"file": ("a.jpg", jpeg)}).status_code == 401
        bad = httpx.post(f"{base}/predict", files={"file": ("a.jpg", jpeg)}, headers={"X-API-Key": "nope"})
        assert bad.status_code == 401 and "API key" in bad.json()["detail"]
        assert httpx.get(f"{base}/model").status_code == 401
        assert httpx.get(f"{base}/health").status_code == 200  # liveness stays open
        good = httpx.post(f"{base}/predict", files={"file": ("a.jpg", jpeg)}, headers={"X-API-Key": "s3cret"})
        assert good.status_code == 200 and len(good.json()["detections"]) == 2


def test_bounded_load_500_requests_concurrency_16(url: str) -> None:
    jpegs = [_jpeg(square_image((96 + 8 * (i % 4), 128))) for i in range(4)]

    async def run() -> tuple[list[float], list[int], float]:
        sem = asyncio.Semaphore(16)
        lat: list[float] = []
        codes: list[int] = []
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=16)) as client:

            async def one(i: int) -> None:
                async with sem:
                    t0 = time.perf_counter()
                    r = await client.post("/predict", files={"file": (f"{i}.jpg", jpegs[i % 4], "image/jpeg")})
                    lat.append((time.perf_counter() - t0) * 1e3)
                    codes.append(r.status_code)

            t0 = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(500)))
            return lat, codes, time.perf_counter() - t0

    lat, codes, wall = asyncio.run(run())
    assert codes.count(200) == 500, {c: codes.count(c) for c in set(codes)}
    lat.sort()
    report = {
        "requests": 500,
        "concurrency": 16,
        "errors": 500 - codes.count(200),
        "wall_s": round(wall, 3),
        "p50_ms": round(statistics.median(lat), 3),
        "p99_ms": round(lat[int(0.99 * len(lat))], 3),
        "model": "tiny test detector (64x64)",
        "note": "test run; benchmark numbers are in benchmarks/results",
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "service_load.json").write_text(json.dumps(report, indent=2) + "\n")
    assert httpx.get(f"{url}/health").json()["requests"] >= 500
    # bounded: 16 in flight at most, so a request waits for at most ~15 others (a run here: p50 240 ms, p99 1.1 s,
    # 10 s in all on the shared 2-core machine); the bounds leave room for a loaded machine, not for a stall
    assert report["p50_ms"] < 2_000 and report["p99_ms"] < 10_000 and wall < 60, report
