"""The service's web page in headless Chromium: upload an image, see the result, watch a live stream; screenshot."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")

from tests.helpers.cdp import Browser, find_chromium
from tests.helpers.deploy_models import export_tiny_detector, square_image
from tests.helpers.servers import ARTIFACTS, free_port, serve_in_thread

from kdinspect.deploy import OrtModel
from kdinspect.deploy.service import create_app
from kdinspect.deploy.sources import open_source
from kdinspect.deploy.stream import run_stream
from kdinspect.deploy.transport import ResultPublisher

CHROMIUM = find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian package 'chromium'; .ci/run installs it)")
def test_upload_and_live_view_in_chromium(tmp_path: Path) -> None:
    model_path = export_tiny_detector(tmp_path / "det.onnx")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(8):
        cv2.imwrite(str(frames / f"{i}.png"), cv2.cvtColor(square_image((240, 320)), cv2.COLOR_RGB2BGR))
    upload = tmp_path / "upload.png"
    cv2.imwrite(str(upload), cv2.cvtColor(square_image((300, 400)), cv2.COLOR_RGB2BGR))

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    publisher = ResultPublisher(endpoint)
    stop = threading.Event()
    app = create_app(model_path, watch=endpoint, threads=1)

    def stream() -> None:
        with open_source(str(frames), fps=10, loop=True) as src:
            model = OrtModel(model_path, threads=1)
            while not stop.is_set():
                run_stream(model, src, publisher, max_frames=5)

    with serve_in_thread(app) as url:
        thread = threading.Thread(target=stream, daemon=True)
        thread.start()
        browser = Browser(CHROMIUM, tmp_path / "chrome-profile")
        try:
            browser.navigate(url)
            browser.wait_for("document.getElementById('model').textContent.includes('detection')")
            browser.set_file("#file", upload)
            browser.evaluate("document.getElementById('go').click()")
            browser.wait_for("document.getElementById('result').dataset.done === '1'")
            table = browser.evaluate("document.getElementById('table').innerText")
            assert "scratch" in table and "blob" in table
            browser.wait_for(
                "document.getElementById('frame').dataset.seq !== undefined "
                "&& document.getElementById('frame').complete "
                "&& document.getElementById('frame').naturalWidth === 320"
            )
            live = browser.evaluate("document.getElementById('ltable').innerText")
            assert "received" in live and "2 detection(s)" in live
            shot = browser.screenshot(ARTIFACTS / "web_page.png")
        finally:
            browser.close()
            stop.set()
            thread.join(10)
            publisher.close(0.2)
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[:2] == (900, 1280) and img.std() > 10
