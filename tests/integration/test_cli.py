"""CLI end to end on generated data: train -> eval -> export -> predict, in-process, plus the installed script."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.helpers.runs import PYTHON, seg_overrides, subprocess_env

from kdinspect.cli.main import main
from kdinspect.config import load_config
from kdinspect.engine.checkpoint import load_checkpoint


def _sets(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def test_train_eval_export_predict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    ovr = seg_overrides(tmp_path / "data", tmp_path / "runs", "cli", epochs=2)
    assert main(["train", "--no-progress", *_sets(ovr)]) == 0
    run = tmp_path / "runs" / "cli"
    for f in (
        "config.yaml",
        "env.json",
        "last.safetensors",
        "best.safetensors",
        "metrics.csv",
        "steps.csv",
        "train.log",
        "loss.png",
        "metrics.png",
        "results.json",
        "eval/metrics.json",
    ):
        assert (run / f).is_file(), f
    _check_run_folder(run)
    capsys.readouterr()

    assert main(["eval", str(run / "best.safetensors"), "--out", str(tmp_path / "ev")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert {"f1", "iou", "f1_tol", "iou_tol", "ods", "ois"} <= set(metrics)

    pytest.importorskip("onnxruntime")
    assert main(["export", str(run / "best.safetensors"), "--out", str(tmp_path / "m.onnx"), "--imgsz", "64"]) == 0
    verify = json.loads((tmp_path / "m.verify.json").read_text())
    assert verify["verify_images"] == 8 and verify["parity"]["max_abs_diff_prob"] < 1e-3
    check = verify["metric_check"]
    assert check["metric"] == "f1" and abs(check["delta_onnx"]) <= 0.01 and check["images"] == 8
    # a failing check is an error (exit 2) and its report is still written next to the model
    bad = tmp_path / "bad.onnx"
    assert main(["export", str(run / "best.safetensors"), "--out", str(bad), "--imgsz", "64", "--max-drop", "-1"]) == 2
    assert "metric_check" in json.loads(bad.with_suffix(".verify.json").read_text())

    imgs = sorted((tmp_path / "data").rglob("*.png"))
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(next(p for p in imgs if "mask" not in str(p)), src / "a.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert main(["predict", str(run / "best.safetensors"), str(src), "--out", str(tmp_path / "pred")]) == 0
    results = json.loads((tmp_path / "pred" / "results.json").read_text())["results"]
    assert {Path(r["image"]).name for r in results} == {"a.png", "broken.jpg"}
    assert any("error" in r for r in results) and any("defect_ratio" in r for r in results)
    _check_prediction(next(r for r in results if "defect_ratio" in r), src / "a.png")

    # the same through the exported model and the torch-free runtime
    assert main(["predict", str(tmp_path / "m.onnx"), str(src), "--out", str(tmp_path / "pred_onnx")]) == 0
    onnx_results = json.loads((tmp_path / "pred_onnx" / "results.json").read_text())["results"]
    by_name = {Path(r["image"]).name: r for r in onnx_results}
    assert "error" in by_name["broken.jpg"] and by_name["a.png"]["task"] == "segmentation"
    with Image.open(tmp_path / "pred_onnx" / "overlays" / "a.jpg") as im:
        assert im.size == (64, 64)

    # --set changes the stored config of a checkpoint (model.params.* rebuild the model); not of an exported model
    wider = ["--set", "model.params.width=8"]
    assert main(["eval", str(run / "best.safetensors"), *wider]) == 2
    assert "after the overrides ['model.params.width=8']" in caplog.text
    assert main(["predict", str(tmp_path / "m.onnx"), str(src), *wider]) == 2
    assert "exported model" in caplog.text


def _check_run_folder(run: Path) -> None:
    """What the files of a 2-epoch run (16 images, batch 4: 8 steps) say, not only that they are there."""
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["epoch"], r["step"]) for r in rows] == [("1", "4"), ("2", "8")] and "f1" in rows[0]
    with (run / "steps.csv").open() as fh:
        steps = list(csv.DictReader(fh))
    assert steps and int(steps[-1]["step"]) == 8 and all(float(r["loss"]) > 0 for r in steps)
    results = json.loads((run / "results.json").read_text())
    assert results["state"]["finished"] and results["state"]["global_step"] == 8
    # the final report is the best checkpoint's evaluation, the same numbers as eval/metrics.json
    evaluated = json.loads((run / "eval" / "metrics.json").read_text())
    keys = ("precision", "recall", "f1", "iou", "ods", "ois", "main", "images")
    assert {k: evaluated[k] for k in keys} == pytest.approx({k: results["metrics"][k] for k in keys})
    state = load_checkpoint(run / "last.safetensors").state["trainer"]
    assert state["global_step"] == 8 and state["epoch"] == 2 and state["finished"]
    assert results["metrics"]["main"] == pytest.approx(state["best"])  # the best epoch's score, not the last one's
    assert load_checkpoint(run / "best.safetensors").state["trainer"]["best_epoch"] == state["best_epoch"]
    assert load_config(run / "config.yaml").train.name == "cli"
    assert "best.safetensors on synthetic-seg/val" in (run / "train.log").read_text()
    for name in ("loss.png", "metrics.png"):
        with Image.open(run / name) as im:
            im.load()
            assert im.format == "PNG" and len(np.unique(np.asarray(im.convert("L")))) > 2, name


def _check_prediction(result: dict, image: Path) -> None:
    """The mask and overlay of one predicted image match it in size, and the reported ratio is the mask's."""
    with Image.open(image) as im:
        w, h = im.size
    assert (result["width"], result["height"]) == (w, h)
    mask = np.asarray(Image.open(result["mask"]))
    assert mask.shape == (h, w) and set(np.unique(mask)) <= {0, 255}
    assert result["defect_pixels"] == int((mask == 255).sum())
    assert result["defect_ratio"] == pytest.approx(result["defect_pixels"] / (w * h), abs=1e-4)
    with Image.open(result["overlay"]) as im:
        assert im.size == (w, h)


def test_errors_are_clear(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert main(["train", "--set", "train.epochs=x"]) == 2
    assert "train.epochs" in caplog.text
    assert main(["eval", str(tmp_path / "nope.safetensors")]) == 2
    assert "not found" in caplog.text
    assert (
        main(
            [
                "train",
                "--set",
                "model.name=nonet",
                "--set",
                "data.format=synthetic-seg",
                "--set",
                f"train.out_dir={tmp_path}",
            ]
        )
        == 2
    )
    assert "unknown model" in caplog.text


def test_info_subprocess() -> None:
    exe = shutil.which("kdinspect")
    cmd = [exe, "info"] if exe else [PYTHON, "-m", "kdinspect", "info"]
    out = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, check=True, timeout=120).stdout
    assert "torch_threads" in out and "unet" in out
