"""Two-input ONNX graphs of reference-aware detectors, the runtime's reference handling, reference lookup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kdinspect.deploy.predict import reference_for

pytest.importorskip("onnxruntime")

SMALL = {"backbone": "mobilenet_v2", "channels": 16, "stacked": 1, "head_norm": "bn", "pred_kernel": 1}


@pytest.fixture(scope="module")
def pair_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kdinspect.export.onnx import export_onnx
    from kdinspect.models import build_model

    torch.manual_seed(0)
    model = build_model("hsd_student_ref", 2, {**SMALL, "score_thr": 0.0}).eval()
    path = tmp_path_factory.mktemp("pair") / "pair.onnx"
    return export_onnx(
        model,
        path,
        (64, 64),
        "detection",
        ["a", "b"],
        "hsd_student_ref",
        nms=False,
        extra_metadata={"kdinspect.align": "ecc"},
    )


def test_two_input_graph_metadata_and_parity(pair_onnx: Path) -> None:
    import onnx

    from kdinspect.export.onnx import inference_module
    from kdinspect.export.verify import compare_outputs
    from kdinspect.models import build_model

    proto = onnx.load(str(pair_onnx))
    assert [i.name for i in proto.graph.input] == ["images", "references"]
    torch.manual_seed(0)
    model = build_model("hsd_student_ref", 2, {**SMALL, "score_thr": 0.0}).eval()
    x, r = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    report = compare_outputs(inference_module(model, "detection", nms=False), pair_onnx, [(x, r)])
    assert report["max_abs_diff_scores"] < 1e-4


def test_runtime_needs_a_reference_and_registers_it(pair_onnx: Path) -> None:
    from kdinspect.deploy.runtime import OrtModel

    rt = OrtModel(pair_onnx, threads=1, score_thr=0.0)
    assert rt.info.reference and rt.info.align == "ecc" and rt.align == "ecc"
    img = np.random.default_rng(0).integers(0, 255, (80, 70, 3), dtype=np.uint8)
    res = rt.predict(img, img[:40, :35].copy())  # any size: resized to the image, then registered
    assert res.boxes.shape[1] == 4
    with pytest.raises(ValueError, match="pass reference"):
        rt.predict(img)
    with pytest.raises(ValueError, match="2 images but 1 references"):
        rt.predict_batch([img, img], [img])
    with pytest.raises(ValueError, match="align 'sift' not in"):
        OrtModel(pair_onnx, align="sift")


def test_single_image_runtime_rejects_a_reference(tmp_path: Path) -> None:
    from tests.helpers.deploy_models import export_tiny_detector

    from kdinspect.deploy.runtime import OrtModel

    rt = OrtModel(export_tiny_detector(tmp_path / "tiny.onnx"), threads=1)
    img = np.zeros((64, 64, 3), np.uint8)
    assert not rt.info.reference
    with pytest.raises(ValueError, match="takes the test image only"):
        rt.predict(img, img)


def test_reference_for_file_folder_and_deeppcb_names(tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "a.png").write_bytes(b"x")
    (refs / "0001_temp.jpg").write_bytes(b"x")
    assert reference_for(Path("imgs/a.jpg"), refs) == refs / "a.png"
    assert reference_for(Path("imgs/0001_test.jpg"), refs) == refs / "0001_temp.jpg"
    assert reference_for(Path("imgs/zzz.png"), refs / "a.png") == refs / "a.png"
    with pytest.raises(FileNotFoundError, match="no reference for b.png"):
        reference_for(Path("imgs/b.png"), refs)
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        reference_for(Path("imgs/b.png"), tmp_path / "missing")
