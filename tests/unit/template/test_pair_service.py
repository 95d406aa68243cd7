"""`kdinspect serve` and `kdinspect stream` with reference-aware models: a registered golden image, a reference per
upload, the overlay with the reference beside it, and clear errors when a reference is missing or not wanted."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")
httpx = pytest.importorskip("httpx")

from tests.helpers.deploy_models import export_tiny_detector  # noqa: E402
from tests.helpers.servers import serve_in_thread  # noqa: E402

from kdinspect.deploy.runtime import OrtModel  # noqa: E402
from kdinspect.deploy.service import create_app  # noqa: E402

SMALL = {"backbone": "mobilenet_v2", "channels": 16, "stacked": 1, "head_norm": "bn", "pred_kernel": 1}


def _png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes()


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from kdinspect.export.onnx import export_onnx
    from kdinspect.models import build_model

    tmp = tmp_path_factory.mktemp("pairsvc")
    torch.manual_seed(0)
    model = build_model("hsd_student_ref", 2, {**SMALL, "score_thr": 0.0}).eval()
    onnx = export_onnx(model, tmp / "pair.onnx", (64, 64), "detection", ["a", "b"], "hsd_student_ref", nms=False)
    rng = np.random.default_rng(0)
    golden = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp / "golden.png"), cv2.cvtColor(golden, cv2.COLOR_RGB2BGR))
    return {"model": onnx, "golden": tmp / "golden.png", "dir": tmp}


class _Spy(OrtModel):
    """The runtime, recording the reference each call got."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.refs: list[np.ndarray | None] = []

    def predict(self, image: np.ndarray, reference: np.ndarray | None = None):  # type: ignore[override]
        self.refs.append(None if reference is None else reference.copy())
        return super().predict(image, reference)


def test_registered_and_uploaded_references(assets: dict[str, Path]) -> None:
    import base64

    golden = cv2.cvtColor(cv2.imread(str(assets["golden"])), cv2.COLOR_BGR2RGB)
    image = golden.copy()
    image[20:40, 20:40] = 0
    other = np.full_like(golden, 128)
    spy = _Spy(assets["model"], threads=1, score_thr=0.0)
    with serve_in_thread(create_app(spy, reference=assets["golden"])) as url:
        info = httpx.get(f"{url}/model", timeout=30).json()
        assert info["reference"] is True and info["registered_reference"] == "golden.png"
        r = httpx.post(f"{url}/predict?overlay=true", files={"file": ("a.png", _png(image), "image/png")}, timeout=30)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["reference"] == {"source": "registered", "file": "golden.png"}
        assert np.array_equal(spy.refs[-1], golden)  # the registered golden image
        vis = cv2.imdecode(np.frombuffer(base64.b64decode(out["overlay_jpeg_base64"]), np.uint8), cv2.IMREAD_COLOR)
        assert vis.shape[0] == 64 and vis.shape[1] == 64 + 6 + 64  # the reference beside the result
        files = {"file": ("a.png", _png(image), "image/png"), "reference": ("b.png", _png(other), "image/png")}
        r = httpx.post(f"{url}/predict", files=files, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["reference"] == {"source": "uploaded", "file": "b.png"}
        assert np.array_equal(spy.refs[-1], other)  # the upload's own reference wins
        assert np.array_equal(spy.refs[-2], golden)  # and did not replace the registered one
        bad = {"file": ("a.png", _png(image), "image/png"), "reference": ("b.png", b"not an image", "image/png")}
        r = httpx.post(f"{url}/predict", files=bad, timeout=30)
        assert r.status_code == 415 and "b.png" in r.json()["detail"]


def test_missing_or_unwanted_reference_is_a_clear_error(assets: dict[str, Path], tmp_path: Path) -> None:
    image = _png(np.zeros((64, 64, 3), np.uint8))
    with serve_in_thread(create_app(assets["model"], threads=1)) as url:  # no registered reference
        r = httpx.post(f"{url}/predict", files={"file": ("a.png", image, "image/png")}, timeout=30)
        assert r.status_code == 422 and "'reference'" in r.json()["detail"]
        assert httpx.get(f"{url}/health", timeout=30).status_code == 200  # still serving
    single = export_tiny_detector(tmp_path / "tiny.onnx")
    with pytest.raises(ValueError, match="takes the image only"):
        create_app(single, threads=1, reference=assets["golden"])
    with serve_in_thread(create_app(single, threads=1)) as url:
        files = {"file": ("a.png", image, "image/png"), "reference": ("b.png", image, "image/png")}
        r = httpx.post(f"{url}/predict", files=files, timeout=30)
        assert r.status_code == 422 and "drop the 'reference' field" in r.json()["detail"]


def test_stream_compares_every_frame_with_the_reference(assets: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    from kdinspect.cli.main import main
    from kdinspect.deploy.sources import open_source
    from kdinspect.deploy.stream import run_stream

    video = assets["dir"] / "line.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    rng = np.random.default_rng(2)
    for _ in range(3):
        writer.write(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    writer.release()
    golden = cv2.cvtColor(cv2.imread(str(assets["golden"])), cv2.COLOR_BGR2RGB)
    model = OrtModel(assets["model"], threads=1)
    seen: list[dict] = []
    with open_source(str(video), every_frame=True) as src:
        summary = run_stream(model, src, on_frame=lambda meta, _jpeg: seen.append(meta), reference=golden)
    assert summary["processed"] == 3 and len(seen) == 3
    assert main(["stream", "--model", str(assets["model"]), "--source", str(video), "--max-frames", "1"]) != 0
    assert "pass --reference FILE" in capsys.readouterr().err
    args = ["stream", "--model", str(assets["model"]), "--source", str(video), "--reference", str(assets["golden"])]
    assert main([*args, "--max-frames", "2"]) == 0
    assert '"processed": 2' in capsys.readouterr().out
