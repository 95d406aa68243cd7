import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdinspect.data.structures import Detections
from kdinspect.evaluation.detection import GroundTruth, confusion_matrix, evaluate_detections


def _gts() -> list[GroundTruth]:
    return [
        GroundTruth("a", 100, 100, np.array([[10, 10, 50, 50], [60, 60, 90, 90]], float), np.array([0, 1])),
        GroundTruth("b", 100, 100, np.array([[20, 20, 40, 70]], float), np.array([1])),
    ]


def _dets(boxes: list[list[float]], scores: list[float], labels: list[int]) -> Detections:
    return Detections(
        torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(scores), torch.tensor(labels)
    )


def test_perfect_predictions(tmp_path: Path) -> None:
    gts = _gts()
    preds = [_dets(g.boxes.tolist(), [0.9] * len(g.labels), g.labels.tolist()) for g in gts]
    m = evaluate_detections(preds, gts, ["scratch", "spot"], out_dir=tmp_path)
    assert m["mAP50"] == pytest.approx(1.0) and m["mAP"] == pytest.approx(1.0) and m["main"] == m["mAP50"]
    assert m["AP50_scratch"] == pytest.approx(1.0) and m["AP50_spot"] == pytest.approx(1.0)
    assert json.loads((tmp_path / "metrics.json").read_text()) == pytest.approx(m)
    # the saved matrix: rows = GT class, columns = prediction, last = background; header names them
    lines = (tmp_path / "confusion_matrix.csv").read_text().splitlines()
    assert lines[0] == "# scratch,spot,background"
    np.testing.assert_array_equal(np.loadtxt(lines[1:], delimiter=",", dtype=int), [[1, 0, 0], [0, 2, 0], [0, 0, 0]])
    for name in ("pr_curves.png", "confusion_matrix.png"):
        with Image.open(tmp_path / name) as im:  # a real, decodable figure, not just a file
            im.load()
            assert im.format == "PNG" and min(im.size) >= 100 and len(np.unique(np.asarray(im.convert("L")))) > 2, name


def test_written_confusion_matrix_counts_errors(tmp_path: Path) -> None:
    gts = _gts()
    preds = [_dets([[10, 10, 50, 50], [0, 0, 5, 5]], [0.9, 0.8], [1, 0]), _dets([[20, 20, 40, 70]], [0.1], [1])]
    evaluate_detections(preds, gts, ["scratch", "spot"], out_dir=tmp_path)
    # scratch read as spot; a false scratch on background; spot of "a" missed; spot of "b" below the 0.25 score
    mat = np.loadtxt(tmp_path / "confusion_matrix.csv", delimiter=",", dtype=int)
    np.testing.assert_array_equal(mat, [[0, 1, 0], [0, 0, 2], [1, 0, 0]])


def test_wrong_class_and_missed() -> None:
    gts = _gts()
    preds = [_dets([[10, 10, 50, 50]], [0.9], [1]), _dets([], [], [])]
    m = evaluate_detections(preds, gts, ["scratch", "spot"])
    assert m["mAP50"] == pytest.approx(0.0)
    mat = confusion_matrix(preds, gts, 2)
    # gt scratch predicted as spot; gt spot (x2) missed
    assert mat[0, 1] == 1 and mat[1, 2] == 2 and mat.sum() == 3


def test_half_recall() -> None:
    gts = [GroundTruth("a", 100, 100, np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float), np.array([0, 0]))]
    m = evaluate_detections([_dets([[0, 0, 10, 10]], [0.8], [0])], gts, ["x"])
    assert m["mAP50"] == pytest.approx(0.5, abs=0.01)


def test_no_predictions_at_all() -> None:
    m = evaluate_detections([_dets([], [], []), _dets([], [], [])], _gts(), ["a", "b"])
    assert m["mAP50"] == 0.0 and m["main"] == 0.0
