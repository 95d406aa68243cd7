"""MCFF-L 3-step workflow on real DeepCrack images with tiny networks: teacher -> soft labels -> offline KD student,
then online KD, eval/predict through the CLI and ONNX export with the ``prob`` output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from kdinspect.api import train
from kdinspect.cli.main import main
from kdinspect.config import config_from_dict
from kdinspect.data.io import load_soft_label
from kdinspect.distill.mcff_softlabels import generate_soft_labels

DEEPCRACK = Path("/work/shared/datasets/deepcrack")
if not DEEPCRACK.is_dir():
    DEEPCRACK = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "deepcrack"

pytestmark = pytest.mark.skipif(not (DEEPCRACK / "train_img").is_dir(), reason="DeepCrack not available")


def _cfg(tmp: Path, name: str, model_name: str, **sections) -> dict:
    cfg = {
        "task": "segmentation",
        "data": {
            "format": "deepcrack",
            "root": str(DEEPCRACK),
            "train": "train",
            "val": "test",
            "imgsz": 64,
            "limit": 2,
        },
        "model": {"name": model_name, "params": {"width": 4, "n_blocks": 1}},
        "train": {
            "epochs": 1,
            "batch_size": 2,
            "optimizer": "rmsprop",
            "lr": 1e-3,
            "momentum": 0.0,
            "weight_decay": 0.0,
            "scheduler": "none",
            "threads": 1,
            "out_dir": str(tmp),
            "name": name,
        },
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    return cfg


def _step_keys(run_dir: Path) -> list[str]:
    with (run_dir / "steps.csv").open() as fh:
        return next(csv.reader(fh))


def test_three_step_offline_and_online_workflow(tmp_path, monkeypatch):
    teacher = train(config_from_dict(_cfg(tmp_path, "teacher", "mcff_teacher")), progress=False)
    assert {"f1", "iou", "f1_tol", "iou_tol", "ods"} <= set(teacher.metrics)
    results = json.loads((teacher.run_dir / "results.json").read_text())
    assert results["fit_eval_wall_s"] > 0 and results["fit_wall_s"] <= results["train_wall_s"]
    # the final evaluation is not repeated: its report is the one in eval/
    assert json.loads((teacher.run_dir / "eval" / "metrics.json").read_text())["f1"] == teacher.metrics["f1"]

    monkeypatch.chdir(tmp_path)  # soft-label folders relative to the working directory, as in the configs
    dirs = generate_soft_labels(teacher.best, "soft", t1=10.0, fmt="png")
    assert dirs == ["soft/h", "soft/x", "soft/y", "soft/mix"]
    image_id = sorted(Path(dirs[0]).glob("*.png"))[0].stem
    soft = load_soft_label([str(Path(d) / f"{image_id}.png") for d in dirs])
    assert soft.shape == (4, 384, 544) and soft.min() >= 0.0 and soft.max() <= 1.0

    kd_cfg = _cfg(
        tmp_path,
        "student_kd",
        "mcff_student",
        data={"params": {"soft_labels": dirs}},
        distill={"method": "mcff_kd", "params": {"strategy": "standard"}},
    )
    student = train(config_from_dict(kd_cfg), progress=False)
    keys = _step_keys(student.run_dir)
    assert {"distill.loss_h", "distill.loss_mix", "student.loss_mix_for_real"} <= set(keys)
    assert student.metrics["images"] == 2  # the test split is evaluated without soft labels

    online_cfg = _cfg(
        tmp_path,
        "student_online",
        "mcff_student",
        model={"params": {"width": 4, "n_blocks": 1, "infer_temperature": 10.0}},
        distill={
            "method": "mcff_kd",
            "teacher": str(teacher.best),
            "params": {"strategy": "non_isothermal", "quantize": True},
        },
    )
    online = train(config_from_dict(online_cfg), progress=False)
    assert "distill.loss_y" in _step_keys(online.run_dir)

    assert main(["eval", str(student.best), "--out", str(tmp_path / "eval")]) == 0
    assert (
        main(
            ["predict", str(student.best), str(DEEPCRACK / "test_img" / "11125-1.jpg"), "--out", str(tmp_path / "pred")]
        )
        == 0
    )
    assert list((tmp_path / "pred" / "overlays").glob("*.jpg"))

    # export checks and INT8 calibration read images only: the student's soft labels may be gone by then
    from kdinspect.engine.checkpoint import load_model
    from kdinspect.export.check import load_val_subset

    Path("soft").rename("soft_moved")
    assert len(load_val_subset(load_model(student.best), 2, split="train")) >= 1


@pytest.mark.parametrize("model_name", ["mcff_student", "mcff_student_lite"])
def test_student_exports_to_onnx_with_prob_output(tmp_path, model_name):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from kdinspect.export.api import export_checkpoint

    run = train(config_from_dict(_cfg(tmp_path, "s", model_name, train={"max_iters": 1})), progress=False)
    # exported at DeepCrack's own 384x544 (the tiny net stays fast): the runtime sees the pixels PyTorch sees, so the
    # metric check runs with a real limit
    report = export_checkpoint(
        run.best, tmp_path / "s.onnx", imgsz="384x544", verify_images=2, metric_images=2, max_metric_drop=0.02
    )
    check = report["metric_check"]
    assert check["metric"] == "f1" and check["images"] == 2
    assert check["pytorch"] > 0.02, check  # a 1-step net still marks cracks: the check has something to compare
    assert abs(check["delta_onnx"]) <= 0.02 and check["onnx"] == pytest.approx(check["pytorch"] + check["delta_onnx"])
    sess = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["prob"]
    out = sess.run(None, {"images": np.random.default_rng(0).random((1, 3, 384, 544), dtype=np.float32)})[0]
    assert out.shape == (1, 1, 384, 544) and report["verify_images"] == 2
