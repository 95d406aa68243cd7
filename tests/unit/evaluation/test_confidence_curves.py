"""P / R / F1 against confidence, checked on hand-counted detections."""

from __future__ import annotations

import numpy as np
import torch

from kdinspect.data.structures import Detections
from kdinspect.evaluation.confidence import confidence_curves, match_detections


def _det(boxes: list, scores: list, labels: list) -> Detections:
    return Detections(
        torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(scores), torch.tensor(labels)
    )


def test_greedy_matching_counts_one_tp_per_ground_truth_box() -> None:
    # two ground-truth boxes of class 0; three detections: a hit (0.9), a duplicate of it (0.8), a miss (0.6)
    det = _det([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]], [0.9, 0.8, 0.6], [0, 0, 0])
    gt_boxes = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)]
    scores, labels, tp = match_detections([det], gt_boxes, [np.array([0, 0])])
    assert tp.tolist() == [True, False, False] and labels.tolist() == [0, 0, 0] and np.allclose(scores, [0.9, 0.8, 0.6])


def test_precision_and_recall_at_each_confidence() -> None:
    det = _det([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]], [0.9, 0.6, 0.3], [0, 0, 0])
    gt = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)]
    c = confidence_curves([det], gt, [np.array([0, 0])], num_classes=2, points=11)
    # conf 0.3: 3 detections, 2 TP -> P 2/3, R 1; conf 0.5: 2 detections, 1 TP -> P 1/2, R 1/2; conf 0.7: P 1, R 1/2
    assert np.isclose(c.precision[0, 3], 2 / 3) and np.isclose(c.recall[0, 3], 1.0)
    assert np.isclose(c.precision[0, 5], 0.5) and np.isclose(c.recall[0, 5], 0.5)
    assert np.isclose(c.precision[0, 7], 1.0) and np.isclose(c.recall[0, 7], 0.5)
    assert np.isclose(c.f1[0, 3], 0.8)  # 2 * (2/3) * 1 / (2/3 + 1)
    assert c.n_gt.tolist() == [2, 0] and c.best_index <= 3  # class 1 has no ground truth and is ignored
