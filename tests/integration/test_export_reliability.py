"""Export without surprises: the default input size is the one the model was validated at, and a file that fails
its check is never left as ``best.onnx``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers.runs import seg_overrides

from kdinspect.api import train
from kdinspect.config import load_config
from kdinspect.data.synthetic import ensure_synthetic

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny U-Net trained on 32 px crops of 32x64 images and validated at full resolution (data.eval_imgsz=0)."""
    tmp = tmp_path_factory.mktemp("export_rel")
    data = tmp / "data"
    ensure_synthetic(data, "segmentation", n_train=8, n_val=4, seed=0, size=(32, 64))
    extra = ["data.params.n_train=8", "data.params.n_val=4", "data.params.size=[32,64]", "train.max_iters=2"]
    return train(load_config(None, seg_overrides(data, tmp, "seg", epochs=1, extra=extra)), progress=False).best


def test_segmentation_export_defaults_to_the_validation_size(seg_run: Path, tmp_path: Path) -> None:
    from kdinspect.export.api import export_checkpoint

    report = export_checkpoint(seg_run, tmp_path / "m.onnx", verify_images=1, metric_images=2)
    assert report["input_size"] == [32, 64]  # was [32, 32]: the training crop (data.imgsz), not the validated size
    assert abs(report["metric_check"]["delta_onnx"]) <= 0.01


def test_failed_export_check_is_not_left_as_the_model_file(seg_run: Path, tmp_path: Path) -> None:
    from kdinspect.export.api import ExportCheckError, export_checkpoint

    out = tmp_path / "best.onnx"
    # a limit no model can meet (the metric must rise by 1.0): the check fails
    with pytest.raises(ExportCheckError, match=r"best\.failed\.onnx"):
        export_checkpoint(seg_run, out, verify_images=1, metric_images=2, max_metric_drop=-1.0)
    assert not out.exists()
    assert (tmp_path / "best.failed.onnx").is_file()
    report = json.loads((tmp_path / "best.verify.json").read_text())
    assert report["status"] == "failed" and "drops" in report["error"]
    assert report["failed_files"] == [str(tmp_path / "best.failed.onnx")]
    assert not list(tmp_path.glob("*.tmp"))

    # a later export that passes replaces the failed file's leftovers
    report = export_checkpoint(seg_run, out, verify_images=1, metric_images=2)
    assert report["status"] == "passed" and out.is_file()
    assert not (tmp_path / "best.failed.onnx").exists()


def test_demo_segmentation_config_exports_at_its_validation_size(tmp_path: Path) -> None:
    """configs/demo/seg_synthetic.yaml trains on 64 px crops of 96x128 images; its default export was 64x64 (F1
    0.885 -> 0.792 in the metric check: a failed export), it is the validated 96x128."""
    from kdinspect.data import build_dataset
    from kdinspect.export.api import _input_size

    repo = Path(__file__).resolve().parents[2]
    small = [f"data.root={tmp_path / 'data'}", "data.params.n_train=2", "data.params.n_val=3"]  # fewer, same size
    cfg = load_config(repo / "configs" / "demo" / "seg_synthetic.yaml", small)
    val = build_dataset(cfg.data, "val", "segmentation", train=False, run_dir=tmp_path)
    assert _input_size(cfg, "segmentation", None, [val[i] for i in range(3)]) == (96, 128)
    assert _input_size(cfg, "segmentation", (64, 64), []) == (64, 64)  # --imgsz still wins


def test_failed_int8_check_renames_every_file_of_the_export(seg_run: Path, tmp_path: Path) -> None:
    from kdinspect.export.api import ExportCheckError, export_checkpoint

    out = tmp_path / "best.onnx"
    with pytest.raises(ExportCheckError, match=r"int8"):
        export_checkpoint(
            seg_run, out, verify_images=1, metric_images=2, int8="qdq", calib_images=2, keep_slower_int8=True,
            max_int8_drop=-1.0,
        )  # fmt: skip
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == ["best.failed.onnx", "best.int8.failed.onnx"]
    report = json.loads((tmp_path / "best.verify.json").read_text())
    assert report["failed_files"] == [str(tmp_path / "best.failed.onnx"), str(tmp_path / "best.int8.failed.onnx")]
