"""The ONNX runtime on contract-following graphs: in-graph vs host NMS, dynamic batch, boxes mapped to the image."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from tests.helpers.deploy_models import CLASSES, export_tiny_detector, export_tiny_segmenter, square_image
from tests.helpers.runs import subprocess_env

from kdinspect.deploy import OrtModel
from kdinspect.deploy.postprocess import host_nms


def test_graph_and_host_nms_agree_and_map_to_image_pixels(tmp_path: Path) -> None:
    img = square_image((96, 128))
    graph = OrtModel(export_tiny_detector(tmp_path / "g.onnx", nms=True), threads=1)
    host = OrtModel(export_tiny_detector(tmp_path / "h.onnx", nms=False), threads=1, score_thr=0.3)
    assert graph.info.task == "detection" and graph.info.classes == CLASSES and graph.info.nms == "graph"
    assert host.info.nms == "host" and graph.info.score_thr == pytest.approx(0.3)
    a, b = graph.predict(img), host.predict(img)
    assert len(a) == 2 and sorted(a.labels.tolist()) == [0, 1]
    np.testing.assert_allclose(a.boxes[np.argsort(a.labels)], b.boxes[np.argsort(b.labels)], atol=1e-4)
    dark = a.boxes[a.labels == 0][0]
    np.testing.assert_allclose(dark, [0, 0, 32, 24], atol=1e-3)  # one 4x4 grid cell of the 128x96 image
    out = a.to_json()
    assert out["width"] == 128 and {d["class"] for d in out["detections"]} == set(CLASSES)


def test_dynamic_batch_matches_single_images(tmp_path: Path) -> None:
    model = OrtModel(export_tiny_detector(tmp_path / "d.onnx", dynamic=True), threads=1)
    assert model.info.dynamic_batch
    imgs = [square_image((64, 64)), np.full((50, 70, 3), 200, np.uint8), square_image((80, 40))]
    batched = model.predict_batch(imgs)
    single = [model.predict(i) for i in imgs]
    assert [len(r) for r in batched] == [len(r) for r in single] == [2, 0, 2]
    for r, s in zip(batched, single):
        np.testing.assert_allclose(r.boxes, s.boxes, atol=1e-4)


def test_segmentation_result_at_original_size(tmp_path: Path) -> None:
    model = OrtModel(export_tiny_segmenter(tmp_path / "s.onnx"), threads=1, mask_thr=0.5)
    res = model.predict(np.random.default_rng(0).integers(0, 255, (50, 90, 3), dtype=np.uint8))
    assert res.prob.shape == (50, 90) and 0 <= res.prob.min() <= res.prob.max() <= 1
    summary = res.to_json()
    assert summary["task"] == "segmentation" and summary["defect_pixels"] == int((res.prob >= 0.5).sum())
    assert set(model.last_timing) == {"preprocess_ms", "inference_ms", "postprocess_ms"}


def test_host_nms_classwise() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], np.float32)
    scores = np.array([[0.9, 0.0], [0.8, 0.0], [0.0, 0.7]], np.float32)
    _, s, lab = host_nms(boxes, scores, 0.1, 0.5)
    assert s.tolist() == pytest.approx([0.9, 0.7]) and lab.tolist() == [0, 1]  # overlap suppressed within class only


def test_not_a_kdinspect_model(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["prob"])],
        "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    onnx.save(helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="not a kdinspect export"):
        OrtModel(tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError):
        OrtModel(tmp_path / "missing.onnx")


def test_runtime_imports_without_torch(tmp_path: Path) -> None:
    """kdinspect.deploy (runtime, stream, transport, service) must work on a box without torch."""
    seg = export_tiny_segmenter(tmp_path / "s.onnx")
    code = f"""
import sys
for name in ("torch", "torchvision"):
    sys.modules[name] = None  # any import of torch now fails
import numpy as np
import kdinspect.deploy, kdinspect.deploy.stream, kdinspect.deploy.transport, kdinspect.deploy.service
from kdinspect.deploy import OrtModel
r = OrtModel({str(seg)!r}, threads=1).predict(np.zeros((40, 40, 3), np.uint8))
loaded = sorted(m for m in sys.modules if m.startswith(("kdinspect.", "torch")) and sys.modules[m] is not None)
print(__import__("json").dumps({{"shape": list(r.prob.shape), "modules": loaded}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["shape"] == [40, 40]
    assert all(m.startswith("kdinspect.deploy") or m == "kdinspect.utils" for m in info["modules"]), info["modules"]


def test_compare_dets_matches_sets_and_tolerates_ties_at_the_cut() -> None:
    from kdinspect.export.verify import compare_dets

    a = np.array([[0, 0, 0, 10, 10, 0.9, 1], [0, 20, 20, 30, 30, 0.5, 0], [0, 40, 40, 50, 50, 0.5, 0]], np.float32)
    b = a[[2, 0, 1]].copy()
    b[1, 1] += 1e-4
    assert compare_dets(a, b) == (pytest.approx(1e-4, abs=1e-6), 0)  # order does not matter
    tie = a.copy()
    tie[2, 1:5] = [60, 60, 70, 70]  # another box of the same (lowest) score survived the cut
    assert compare_dets(a, tie)[1] == 0
    wrong = a.copy()
    wrong[0, 1:5] = [100, 100, 120, 120]  # the top detection moved: a real mismatch
    assert compare_dets(a, wrong)[1] == 2
