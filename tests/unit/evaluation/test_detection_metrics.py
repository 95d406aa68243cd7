from pathlib import Path

import numpy as np
import pytest
import torch

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
    for f in ("metrics.json", "pr_curves.png", "confusion_matrix.png", "confusion_matrix.csv"):
        assert (tmp_path / f).is_file()


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
