"""What ``kdinspect predict`` prints: one line per image with counts per class and pre / inference / post times,
then a total."""

from __future__ import annotations

from kdinspect.cli.predict_cmd import console_lines

MS = {"pre": 1.25, "inference": 10.0, "post": 0.5}


def test_detection_lines_count_per_class_and_time_each_stage() -> None:
    dets = [{"class": "crazing"}, {"class": "patches"}, {"class": "crazing"}]
    lines = console_lines(
        [
            {"image": "/d/a.jpg", "detections": dets, "ms": MS},
            {"image": "/d/b.jpg", "detections": [], "ms": {"pre": 2.75, "inference": 20.0, "post": 1.5}},
            {"image": "/d/c.jpg", "error": "truncated JPEG"},
        ]
    )
    assert lines == [
        "a.jpg: 2 crazing, 1 patches (1.2 ms pre, 10.0 ms inference, 0.5 ms post)",
        "b.jpg: no detections (2.8 ms pre, 20.0 ms inference, 1.5 ms post)",
        "c.jpg: not read (truncated JPEG)",
        "2 image(s): 3 detections (crazing 2, patches 1), 1 not read; per image 2.0 ms pre, 15.0 ms inference, "
        "1.0 ms post",
    ]


def test_segmentation_lines_give_the_defect_share() -> None:
    lines = console_lines(
        [
            {"image": "x.png", "defect_ratio": 0.0123, "ms": MS},
            {"image": "y.png", "defect_ratio": 0.0, "ms": MS},
        ]
    )
    assert lines[0] == "x.png: defect 1.23 % of pixels (1.2 ms pre, 10.0 ms inference, 0.5 ms post)"
    assert lines[1].startswith("y.png: no defect pixels")
    assert lines[2].startswith("2 image(s): defects in 1 image(s); per image")
