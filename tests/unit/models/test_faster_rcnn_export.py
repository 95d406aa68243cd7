import numpy as np
import pytest
import torch
from tests.helpers.tiny_detector import tiny_faster_rcnn

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.mark.export
def test_onnx_export_matches_eager_on_new_inputs(tmp_path):
    from kdinspect.export.onnx import export_onnx

    model = tiny_faster_rcnn(3, cosine_scale=20.0, seed=3).eval()
    model.roi_heads.score_thresh = 0.0  # detections on random inputs, so the comparison is not vacuous
    path = export_onnx(model, tmp_path / "frcnn.onnx", (64, 64), "detection", ["a", "b", "c"], "faster_rcnn_fpn")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for seed in (0, 1):
        x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            ref = model.inference_module()(x).dets.numpy()
        (got,) = sess.run(None, {"images": x.numpy()})
        assert ref.shape[0] > 0 and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-3, rtol=1e-3)


@pytest.mark.export
def test_dynamic_batch_export_is_refused_with_a_clear_error(tmp_path):
    """The RPN/RoI per-image loops are traced at batch 1: a dynamic-batch graph would fail at batch > 1 in ONNX
    Runtime, so the export refuses it instead of writing a file that breaks later."""
    from kdinspect.export.onnx import export_onnx

    model = tiny_faster_rcnn(3, seed=0).eval()
    with pytest.raises(ValueError, match="static batch of 1"):
        export_onnx(model, tmp_path / "dyn.onnx", (64, 64), "detection", ["a", "b", "c"], dynamic=True)
    assert not (tmp_path / "dyn.onnx").exists()
