import numpy as np
import pytest
import torch

from kdinspect.data.structures import Detections
from kdinspect.evaluation.voc import average_precision, class_ap, voc_ap_groups


def _det(boxes, scores, labels):
    return Detections(torch.tensor(boxes, dtype=torch.float32).view(-1, 4), torch.tensor(scores), torch.tensor(labels))


def test_voc07_eleven_point_hand_value():
    # 2 gts; detections (by score): TP, FP, TP -> recall .5 .5 1, precision 1 .5 2/3
    rec, prec = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2.0 / 3.0])
    assert average_precision(rec, prec, "voc07") == pytest.approx((6 * 1.0 + 5 * 2.0 / 3.0) / 11.0)
    assert average_precision(rec, prec, "area") == pytest.approx(0.5 * 1.0 + 0.5 * 2.0 / 3.0)
    with pytest.raises(ValueError):
        average_precision(rec, prec, "coco")


def test_class_ap_matching_duplicates_and_legacy_coordinates():
    gt_boxes = [torch.tensor([[0.0, 0.0, 9.0, 9.0], [20.0, 20.0, 40.0, 40.0]])]
    gt_labels = [torch.tensor([0, 0])]
    # first: legacy IoU exactly 0.5 (10x5 vs 10x10 with +1), plain IoU 0.44 -> TP only with legacy coordinates;
    # second: duplicate of the first gt -> FP; third: exact second gt -> TP
    dets = [_det([[0, 0, 9, 4], [0, 0, 9, 9], [20, 20, 40, 40]], [0.9, 0.8, 0.7], [0, 0, 0])]
    ap, n = class_ap(dets, gt_boxes, gt_labels, 0)
    assert n == 2
    assert ap == pytest.approx((6 * 1.0 + 5 * 2.0 / 3.0) / 11.0)


def test_groups_average_classes_with_ground_truth():
    gt_boxes = [torch.tensor([[0.0, 0.0, 10.0, 10.0], [30.0, 30.0, 50.0, 50.0]])]
    gt_labels = [torch.tensor([0, 1])]
    dets = [_det([[0, 0, 10, 10]], [0.9], [0])]  # class 0 perfect, class 1 missed, class 2 has no gt
    out = voc_ap_groups(dets, gt_boxes, gt_labels, ["a", "b", "c"], {"base": ["a"], "novel": ["b", "c"]})
    assert out["AP50/a"] == pytest.approx(1.0) and out["AP50/b"] == 0.0
    assert out["AP50_base"] == pytest.approx(1.0)
    assert out["AP50_novel"] == 0.0
    assert out["AP50_all"] == pytest.approx(0.5)  # class c has no gt and is left out of the mean
    with pytest.raises(KeyError):
        voc_ap_groups(dets, gt_boxes, gt_labels, ["a", "b", "c"], {"base": ["z"]})
