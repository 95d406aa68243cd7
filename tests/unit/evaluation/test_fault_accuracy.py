"""The HSD image-level fault accuracy on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdinspect.data.structures import Detections
from kdinspect.evaluation.fault_accuracy import fault_accuracy


def dets(*rows: tuple[float, float, float, float, float]) -> Detections:
    t = torch.tensor(rows, dtype=torch.float32).reshape(-1, 5)
    return Detections(t[:, :4], t[:, 4], torch.zeros(len(t), dtype=torch.long))


def test_counts_per_threshold() -> None:
    preds = [
        dets((10, 10, 50, 50, 0.95)),  # fault image, found at the right place
        dets((200, 200, 240, 240, 0.75), (10, 10, 20, 20, 0.3)),  # fault image, top box far away
        dets(),  # fault image, nothing predicted -> missed
        dets((5, 5, 9, 9, 0.65)),  # fault-free image with a box -> false detection at t <= 0.65
    ]
    gts = [np.array([[12.0, 8, 48, 52]]), np.array([[10.0, 10, 30, 30]]), np.array([[0.0, 0, 5, 5]]), np.zeros((0, 4))]
    out = fault_accuracy(preds, gts, thresholds=(0.6, 0.7, 0.9), loc_tol=20)
    assert out["fault_images"] == 4
    assert (out["fault_false@0.6"], out["fault_missed@0.6"], out["fault_errloc@0.6"]) == (1, 1, 1)
    assert out["fault_acc@0.6"] == pytest.approx(0.5)
    assert (out["fault_false@0.7"], out["fault_missed@0.7"]) == (0, 1)
    assert out["fault_acc@0.7"] == pytest.approx(0.75)
    assert (out["fault_false@0.9"], out["fault_missed@0.9"], out["fault_errloc@0.9"]) == (0, 2, 0)


def test_length_mismatch() -> None:
    with pytest.raises(ValueError, match="1 predictions but 2"):
        fault_accuracy([dets()], [np.zeros((0, 4)), np.zeros((0, 4))])


def test_single_class_detection_eval_reports_fault_accuracy() -> None:
    from kdinspect.evaluation.detection import GroundTruth, evaluate_detections

    preds = [dets((10, 10, 50, 50, 0.95)), dets()]
    gts = [
        GroundTruth("a", 100, 100, np.array([[10.0, 10, 50, 50]]), np.array([0])),
        GroundTruth("b", 100, 100, np.zeros((0, 4)), np.zeros(0)),
    ]
    metrics = evaluate_detections(preds, gts, ["fault"])
    assert metrics["fault_acc@0.5"] == 1.0 and metrics["mAP50"] == pytest.approx(1.0)
    assert "fault_acc@0.5" not in evaluate_detections(preds, gts, ["fault", "other"])
