"""What a ``serve`` user sees: /model gives the thresholds /predict applies, one log line per request, and the page
has no empty image boxes before the first result."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient
from tests.helpers.deploy_models import export_tiny_detector, square_image

from kdinspect.deploy.service import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    return TestClient(create_app(export_tiny_detector(tmp_path_factory.mktemp("svc") / "det.onnx"), threads=1))


def test_model_reports_the_threshold_predict_applies(client: TestClient) -> None:
    info = client.get("/model").json()
    # what /predict filters at: the runtime's 0.25 floor or the graph's own threshold, whichever is higher
    assert info["score_thr"] == max(0.25, info["graph_score_thr"])
    jpeg = cv2.imencode(".jpg", square_image())[1].tobytes()
    dets = client.post("/predict", files={"file": ("a.jpg", jpeg, "image/jpeg")}).json()["detections"]
    assert all(d["score"] >= info["score_thr"] for d in dets)


def test_one_log_line_per_request(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kdinspect")
    client.get("/health")
    client.get("/nope")
    lines = [r.getMessage() for r in caplog.records if r.name == "kdinspect.deploy.service"]
    assert any(" GET /health 200 " in line for line in lines) and any(" GET /nope 404 " in line for line in lines)
    assert len([line for line in lines if " GET /" in line]) == 2


def test_page_has_no_empty_image_before_a_result() -> None:
    page = (Path(__file__).resolve().parents[3] / "src/kdinspect/deploy/static/index.html").read_text()
    assert '<img id="result" alt="overlay" hidden>' in page and '<img id="frame" alt="latest frame" hidden>' in page
    assert "img[hidden] { display: none; }" in page  # the stylesheet's display: block would show them otherwise
