"""Reference-aware detection end to end on synthetic pairs: train a few iterations, evaluate, export a two-input
ONNX graph (parity + metric check), run it with references, ``kdinspect predict --reference``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kdinspect.config import load_config

SMALL = [
    "model.params.backbone=mobilenet_v2",
    "model.params.channels=16",
    "model.params.stacked=1",
    "model.params.head_norm=bn",
    "model.params.pred_kernel=1",
]


def _cfg(root: Path, out: Path, name: str, model: str = "hsd_student_ref", extra: list[str] | None = None):
    return load_config(
        None,
        [
            "task=detection",
            "data.format=synthetic-det",
            f"data.root={root}",
            "data.params.fmt=yolo",
            "data.params.paired=true",
            "data.params.n_train=8",
            "data.params.n_val=4",
            "data.params.imgsz=64",
            "data.params.reference=auto",
            "data.imgsz=64",
            f"model.name={model}",
            *SMALL,
            "train.batch_size=4",
            "train.epochs=1",
            "train.max_iters=3",
            "train.lr=0.005",
            "train.scheduler=none",
            "train.warmup_iters=0",
            "train.threads=1",
            f"train.out_dir={out}",
            f"train.name={name}",
            *(extra or []),
        ],
    )


def test_pair_model_trains_evaluates_exports_and_predicts_with_references(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from kdinspect.api import train
    from kdinspect.cli.main import main
    from kdinspect.deploy.imageio import read_image
    from kdinspect.deploy.runtime import OrtModel
    from kdinspect.export.api import export_checkpoint

    data = tmp_path / "data"
    res = train(_cfg(data, tmp_path, "pair"), progress=False)
    assert "mAP50" in res.metrics
    onnx = tmp_path / "pair.onnx"
    report = export_checkpoint(res.last, onnx, verify_images=2, metric_images=4, max_metric_drop=1.0, dynamic=True)
    assert report["status"] == "passed"
    assert all(v <= 1e-3 for k, v in report["parity"].items() if k.startswith("max_abs_diff"))
    assert "parity_batch2" in report
    assert report["metric_check"]["images"] == 4

    # INT8: calibrated on (image, reference) pairs, timed and checked with both inputs
    q = export_checkpoint(res.last, tmp_path / "q.onnx", verify_images=2, metric_images=4, max_metric_drop=1.0,
                          int8="qdq", calib_images=4, max_int8_drop=1.0, keep_slower_int8=True)  # fmt: skip
    assert q["status"] == "passed" and q["int8"]["kept"] and q["int8"]["calibration_images"] == 4
    assert "int8" in q["metric_check"] and "max_abs_diff_dets" in q["int8"]["parity"]
    int8 = OrtModel(q["int8"]["file"], threads=1)
    assert int8.info.reference and int8.info.precision == "int8-qdq"

    rt = OrtModel(onnx, threads=1, score_thr=0.0)
    assert rt.info.reference and rt.info.align == "none"
    img = read_image(data / "images" / "val" / "val_0000.png")
    ref = read_image(data / "references" / "val" / "val_0000.png")
    assert rt.predict(img, ref).boxes.shape[1] == 4
    with pytest.raises(ValueError, match="pass reference"):
        rt.predict(img)

    out = tmp_path / "pred"
    refs = data / "references" / "val"
    (tmp_path / "imgs").mkdir()
    for name in ("val_0000.png", "val_0001.png"):
        (tmp_path / "imgs" / name).write_bytes((data / "images" / "val" / name).read_bytes())
    (tmp_path / "imgs" / "orphan.png").write_bytes((data / "images" / "val" / "val_0002.png").read_bytes())
    for model in (str(onnx), str(res.last)):
        rc = main(["predict", model, str(tmp_path / "imgs"), "--reference", str(refs), "--out", str(out)])
        assert rc == 0
        results = json.loads((out / "results.json").read_text())["results"]
        by_name = {Path(r["image"]).name: r for r in results}
        assert "detections" in by_name["val_0000.png"] and "detections" in by_name["val_0001.png"]
        assert "no reference for orphan.png" in by_name["orphan.png"]["error"]
    assert main(["predict", str(onnx), str(tmp_path / "imgs"), "--out", str(out)]) != 0  # no --reference: an error


def test_single_image_runs_are_unchanged_and_reject_references(tmp_path: Path) -> None:
    from kdinspect.api import train

    data = tmp_path / "data"
    cfg = _cfg(data, tmp_path, "single", "hsd_student")
    with pytest.raises(ValueError, match="takes the test image only"):
        train(cfg, progress=False)
    cfg.data.params.pop("reference")
    res = train(cfg, progress=False)
    assert np.isfinite(res.metrics["mAP50"])
