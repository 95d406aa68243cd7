"""A segmenter's threshold is chosen on validation at training time and travels with the model: the checkpoint
stores the ODS threshold of the evaluation of its weights, ``kdinspect export`` writes it into the graph, and
``OrtModel`` / ``predict`` / ``evaluate`` use it unless told otherwise. Models without one keep 0.5."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.helpers.runs import seg_overrides

from kdinspect.api import evaluate, train
from kdinspect.config import load_config
from kdinspect.deploy.runtime import DEFAULT_MASK_THR, OrtModel
from kdinspect.engine.checkpoint import load_checkpoint, load_model, stored_mask_threshold
from kdinspect.evaluation.segmentation import SegmentationMeter
from kdinspect.export.api import export_checkpoint
from kdinspect.predictor import predict


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("thr")
    cfg = load_config(None, seg_overrides(tmp / "data", tmp / "runs", "seg", epochs=2))
    return train(cfg, progress=False).run_dir


def test_at_threshold_equals_direct_count() -> None:
    rng = np.random.default_rng(0)
    meter = SegmentationMeter()
    probs, gts = [], []
    for _ in range(3):
        prob = torch.from_numpy(rng.random((20, 24))).float()
        gt = torch.from_numpy(rng.random((20, 24)) < 0.3)
        meter.update(prob, gt)
        probs.append(prob)
        gts.append(gt)
    for thr in (0.2, 0.37, 0.5, 0.81):
        pred = torch.cat([(p >= thr).flatten() for p in probs])
        gt = torch.cat([g.flatten() for g in gts])
        tp = float((pred & gt).sum())
        f1 = 2 * tp / (float(pred.sum()) + float(gt.sum()))
        got = meter.at_threshold(thr)
        assert got["mask_thr"] == pytest.approx(thr)
        assert got["f1_thr"] == pytest.approx(f1, abs=2e-3)  # binned sweep: values within 1e-4 of a bin edge
    m = meter.compute()
    assert meter.at_threshold(m["ods_threshold"])["f1_thr"] == pytest.approx(m["ods"])
    with pytest.raises(ValueError, match="outside the sweep"):
        meter.at_threshold(1.0)


def test_threshold_stored_exported_and_used(run: Path, tmp_path: Path) -> None:
    for name in ("best.safetensors", "last.safetensors"):
        state = load_checkpoint(run / name).state
        ods_thr = state["trainer"]["metrics"]["ods_threshold"]
        assert stored_mask_threshold(state) == ods_thr
    thr = load_model(run / "best.safetensors").mask_thr
    assert thr is not None and 0.0 < thr < 1.0
    assert thr != DEFAULT_MASK_THR  # else this test could not tell the stored threshold from the default

    # evaluate: the metrics at the stored threshold beside the 0.5 ones; on the validation data it was chosen on,
    # F1 at it is the ODS
    m = evaluate(run / "best.safetensors")
    assert m["mask_thr"] == pytest.approx(thr)
    assert m["f1_thr"] == pytest.approx(m["ods"], abs=1e-6)

    # checkpoint predict: the stored threshold unless one is given
    val = run.parent.parent / "data" / "images" / "val"

    def pixels(**kw: float) -> int:
        return sum(r["defect_pixels"] for r in predict(run / "best.safetensors", val, None, save_overlays=False, **kw))

    stored = pixels()
    assert stored == pixels(mask_thr=thr)
    assert stored != pixels(mask_thr=0.5)  # the two thresholds mark different pixels on these images

    # export writes it into the graph; the runtime reads it, an explicit threshold wins
    onnx = tmp_path / "seg.onnx"
    export_checkpoint(run / "best.safetensors", onnx, verify_images=2, metric_images=4)
    model = OrtModel(onnx, threads=1)
    assert model.info.mask_thr == pytest.approx(thr)
    assert model.mask_thr == pytest.approx(thr)
    assert OrtModel(onnx, threads=1, mask_thr=0.7).mask_thr == 0.7


def test_model_without_threshold_keeps_half(tmp_path: Path) -> None:
    from tests.helpers.deploy_models import export_tiny_segmenter

    onnx = export_tiny_segmenter(tmp_path / "tiny.onnx")
    model = OrtModel(onnx, threads=1)
    assert model.info.mask_thr is None and model.mask_thr == DEFAULT_MASK_THR
    assert stored_mask_threshold({"trainer": {}}) is None
    assert json.loads(json.dumps(model.info.to_json()))["mask_thr"] is None
