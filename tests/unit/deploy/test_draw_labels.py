"""Overlay labels never overprint each other, and stay inside the image."""

from __future__ import annotations

import itertools

import numpy as np

from kdinspect.deploy.draw import draw_detections, label_boxes


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_labels_of_nearly_identical_boxes_do_not_overlap() -> None:
    boxes = np.array([[10, 50, 60, 90], [12, 52, 70, 95], [11, 51, 50, 80], [0, 0, 30, 20]], float)
    rects = label_boxes(boxes, [(40, 12)] * len(boxes), (200, 200))
    assert rects[0] == (10, 38, 40, 12)  # the first label sits just above its box
    for a, b in itertools.combinations(rects, 2):
        assert not _overlap(a, b), (a, b)
    assert all(x >= 0 and y >= 0 and x + w <= 200 and y + h <= 200 for x, y, w, h in rects)


def test_label_at_the_right_edge_is_moved_inside() -> None:
    ((x, _, w, _),) = label_boxes(np.array([[190.0, 50, 199, 60]]), [(40, 12)], (100, 200))
    assert x + w <= 200


def test_draw_detections_keeps_the_image_and_draws_every_box() -> None:
    img = np.zeros((120, 160, 3), np.uint8)
    out = draw_detections(img, np.array([[10, 40, 60, 90], [12, 42, 70, 95]]), [0.9, 0.8], [0, 1], ["a", "b"])
    assert out.shape == img.shape and img.max() == 0 and out.max() > 0
