"""benchmarks.deploy_measure: the YOLO11n-seg peer's host steps (NMS, instance masks, merge) on crafted outputs; the
deployed input size of a checkpoint; the results writer."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from benchmarks import deploy_measure as dm
from benchmarks.common.results import provenance, write_results


class _FakeSession:
    def __init__(self, outputs: list[np.ndarray]) -> None:
        self.outputs = outputs

    def get_inputs(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name="images")]

    def run(self, _names: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        assert feeds["images"].shape == (1, 3, 32, 64)
        return self.outputs


def test_yolo_seg_host_steps_merge_kept_instances_into_one_map() -> None:
    pred = np.zeros((1, 4 + 1 + 32, 6), np.float32)  # (1, 4 + nc + 32 coefficients, anchors), input 32x64
    pred[0, :5, 0] = [16, 8, 16, 8, 0.9]  # a box (cx, cy, w, h) with score 0.9 ...
    pred[0, :5, 1] = [16, 8, 16, 8, 0.8]  # ... its duplicate: suppressed by NMS
    pred[0, :5, 2] = [48, 24, 8, 8, 0.1]  # below the score threshold
    pred[0, 5, :2] = 10.0  # coefficient of prototype 0 -> sigmoid(10) inside the box
    proto = np.zeros((1, 32, 8, 16), np.float32)
    proto[0, 0] = 1.0
    yolo = object.__new__(dm.YoloSegOnnx)
    yolo.sess, yolo.size, yolo.nc, yolo.score_thr, yolo.iou_thr, yolo.instances = (
        _FakeSession([pred, proto]),
        (32, 64),
        1,
        0.25,
        0.5,
        [],
    )
    res = yolo.predict(np.zeros((64, 128, 3), np.uint8))  # the image is twice the input size
    assert yolo.instances == [1]
    assert res.prob.shape == (64, 128)
    assert res.prob[16, 32] > 0.99  # box centre (16, 8) in input pixels -> (32, 16) in the image
    assert res.prob[48, 96] == 0.0 and res.prob[2, 2] == 0.0  # the low-score box and the background stay empty
    assert res.mask.sum() > 0 and not res.mask[:, 64:].any()


def test_input_size_per_model_kind() -> None:
    def loaded(kind: str, imgsz: int, eval_imgsz: int) -> SimpleNamespace:
        return SimpleNamespace(kind=kind, cfg=SimpleNamespace(data=SimpleNamespace(imgsz=imgsz, eval_imgsz=eval_imgsz)))

    sample = SimpleNamespace(meta=SimpleNamespace(orig_size=(384, 544)))
    assert dm.input_size(loaded("detection", 320, 0), [sample]) == (320, 320)
    assert dm.input_size(loaded("segmentation", 448, 512), [sample]) == (512, 512)
    assert dm.input_size(loaded("segmentation", 448, 0), [sample]) == (384, 544)  # full-resolution segmenter


def test_e2e_per_frame_too_short_video_is_a_clear_error(tmp_path: Path) -> None:
    import cv2
    import pytest

    frame = tmp_path / "f.png"
    cv2.imwrite(str(frame), np.zeros((32, 32, 3), np.uint8))
    video = dm.make_video([frame] * 3, tmp_path / "v.mp4")
    assert dm.e2e_per_frame(video, lambda rgb: rgb, warmup=1)["runs"] == 2
    with pytest.raises(ValueError, match="3 frames read, none left to time after 5 warm-up frames"):
        dm.e2e_per_frame(video, lambda rgb: rgb, warmup=5)


def test_write_results_records_provenance_wall_time_and_memory(tmp_path: Path) -> None:
    t0 = time.time()
    doc = {**provenance("benchmarks.x", ["--y"], repo=tmp_path), "figure": 1.5}
    out = write_results("x", doc, lambda d: f"# x\n\nfigure {d['figure']}, {d['wall_s']} s\n", t0, repo=tmp_path)
    saved = json.loads(out.read_text())
    assert out == tmp_path / "benchmarks" / "results" / "x.json"
    assert {"command", "git_commit", "environment", "wall_s", "peak_rss_mb"} <= set(saved) and saved["figure"] == 1.5
    assert saved["wall_s"] >= 0 and saved["peak_rss_mb"] > 0
    assert out.with_suffix(".md").read_text().startswith("# x\n\nfigure 1.5")
