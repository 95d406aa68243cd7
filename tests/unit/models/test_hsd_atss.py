"""ATSS assigner on hand-made boxes (values worked out in the comments)."""

from __future__ import annotations

import torch

from kdinspect.models.heads.atss import atss_assign, grid_anchors

# one level, four 10x10 anchors; centres (5,5), (15,5), (25,5), (5,15)
ANCHORS = torch.tensor([[0.0, 0, 10, 10], [10, 0, 20, 10], [20, 0, 30, 10], [0, 10, 10, 20]])


def test_mean_plus_std_threshold() -> None:
    # GT centre (6,5): the 3 nearest centres are A0 (d=1), A1 (d=9), A3 (d=10.05).
    # IoUs: A0 100/120 = 0.833, A1 20/200 = 0.1, A3 0 -> mean 0.311 + unbiased std 0.455 = 0.766: only A0 passes.
    gt = torch.tensor([[0.0, 0, 12, 10]])
    assert atss_assign(ANCHORS, [4], gt, topk=3).tolist() == [0, -1, -1, -1]


def test_centre_must_lie_inside_the_box() -> None:
    # A0 has IoU 49/100 = 0.49 >= threshold (0.163 + 0.283) but its centre x = 5 lies outside [0, 4.9].
    gt = torch.tensor([[0.0, 0, 4.9, 10]])
    assert atss_assign(ANCHORS, [4], gt, topk=3).tolist() == [-1, -1, -1, -1]


def test_anchor_claimed_twice_goes_to_the_highest_iou() -> None:
    # A0 is positive for both boxes: IoU 0.833 with box 0, 100/140 = 0.714 with box 1 (thr 0.305 + 0.369 = 0.673).
    gt = torch.tensor([[0.0, 0, 10, 14], [0, 0, 12, 10]])
    assert atss_assign(ANCHORS, [4], gt, topk=3).tolist() == [1, -1, -1, -1]


def test_topk_is_taken_per_level() -> None:
    # two levels of two anchors each; topk=1 takes the nearest of each level: A0 (IoU 0.833) and A2 (IoU 0.1).
    # mean 0.467 + std 0.519 = 0.985 > both, so nobody is positive; with topk=2 on level 0 only ...
    gt = torch.tensor([[0.0, 0, 12, 10]])
    anchors = torch.cat([ANCHORS[:2], ANCHORS[2:]])
    assert atss_assign(anchors, [2, 2], gt, topk=1).tolist() == [-1, -1, -1, -1]
    # ... one level of four with topk=3 behaves as in the first test
    assert atss_assign(anchors, [4], gt, topk=3).tolist() == [0, -1, -1, -1]


def test_no_ground_truth_means_all_background() -> None:
    assert atss_assign(ANCHORS, [4], torch.zeros(0, 4), topk=9).tolist() == [-1] * 4


def test_grid_anchors_layout() -> None:
    anchors, strides, counts = grid_anchors([(2, 3), (1, 2)], [8, 16], octave_base_scale=8.0)
    assert counts == [6, 2]
    assert anchors.shape == (8, 4) and strides.tolist() == [8.0] * 6 + [16.0] * 2
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    # row-major, centres at (x * s, y * s) (mmdet 2.x center_offset = 0); side = 8 * stride
    assert centres[:6].tolist() == [[0, 0], [8, 0], [16, 0], [0, 8], [8, 8], [16, 8]]
    assert (anchors[:, 2] - anchors[:, 0]).tolist() == [64.0] * 6 + [128.0] * 2
