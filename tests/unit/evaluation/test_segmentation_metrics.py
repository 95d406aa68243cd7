import numpy as np
import pytest
import torch

from kdinspect.evaluation.segmentation import evaluate_segmentation


def _line(shift: int = 0) -> np.ndarray:
    m = np.zeros((20, 20), dtype=bool)
    m[10 + shift, 2:18] = True
    return m


def test_perfect_prediction() -> None:
    gt = _line()
    m = evaluate_segmentation([torch.as_tensor(gt, dtype=torch.float32)], [gt])
    for k in ("precision", "recall", "f1", "iou", "f1_tol", "iou_tol", "ods", "ois"):
        assert m[k] == pytest.approx(1.0), k


def test_one_pixel_offset_strict_zero_tolerance_precision_one() -> None:
    gt = _line()
    pred = torch.as_tensor(_line(1), dtype=torch.float32)
    m = evaluate_segmentation([pred], [gt])
    assert m["f1"] == 0.0 and m["iou"] == 0.0
    assert m["precision_tol"] == pytest.approx(1.0)
    assert m["recall_tol"] == 0.0  # the released M_* recall uses the undilated GT
    # released IoU: I = |pred & D| = 16, U = I + (|gt| - |gt & pred|) + (|pred| - |D & pred|) = 16 + 16 + 0
    assert m["iou_tol"] == pytest.approx(0.5)


def test_hand_counts_and_ods() -> None:
    gt = np.zeros((4, 4), dtype=bool)
    gt[0, :] = True  # 4 gt pixels
    prob = torch.zeros(4, 4)
    prob[0, :2] = 0.9  # 2 TP
    prob[3, :2] = 0.7  # 2 FP
    m = evaluate_segmentation([prob], [gt], tol=0)
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5)
    assert m["iou"] == pytest.approx(2 / 6)
    assert m["ods"] == pytest.approx(2 * 1 * 0.5 / 1.5)  # threshold in (0.7, 0.9]: P = 1, R = 0.5
    assert 0.7 < m["ods_threshold"] <= 0.9


def test_size_mismatch() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        evaluate_segmentation([torch.zeros(3, 3)], [np.zeros((4, 4), dtype=bool)])
