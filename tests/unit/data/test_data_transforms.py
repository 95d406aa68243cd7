from __future__ import annotations

import numpy as np
import pytest
import torch

from kdinspect.data.transforms import DetectionTransform, SegmentationTransform


def _image(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_detection_hflip_and_resize_move_boxes():
    img = _image(100, 200)
    img[20:60, 10:50] = 255  # the boxed object
    t = DetectionTransform(64, train=True, hflip=1.0)
    out, boxes, labels, scale = t(img, np.array([[10, 20, 50, 60]], np.float32), np.array([3]))
    assert out.shape == (3, 64, 64) and out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1
    assert scale == (0.64, 0.32)
    # flipped x: [200 - 50, 200 - 10] = [150, 190], then scaled
    torch.testing.assert_close(boxes, torch.tensor([[150 * 0.32, 20 * 0.64, 190 * 0.32, 60 * 0.64]]))
    assert labels.tolist() == [3]
    x1, y1, x2, y2 = boxes[0].round().int().tolist()
    assert out[:, y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].min() > 0.99  # the white object moved with its box


def test_detection_vflip_eval_and_sanitize():
    img = _image(50, 50)
    _, boxes, _, _ = DetectionTransform(50, train=True, hflip=0.0, vflip=1.0)(
        img, np.array([[0, 0, 10, 5.0]]), np.array([0])
    )
    torch.testing.assert_close(boxes, torch.tensor([[0.0, 45.0, 10.0, 50.0]]))
    _, boxes, _, _ = DetectionTransform(0, train=False)(img, np.array([[1, 2, 3, 4.0]]), np.array([1]))
    torch.testing.assert_close(boxes, torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    # a box that becomes < 1 px after resizing is dropped with its label in training
    _, boxes, labels, _ = DetectionTransform(10, train=True, hflip=0.0)(
        img, np.array([[0, 0, 2, 2.0], [0, 0, 40, 40]]), np.array([0, 1])
    )
    assert labels.tolist() == [1] and boxes.shape == (1, 4)


def test_segmentation_flip_moves_mask_and_soft():
    img = _image(6, 8)
    mask = np.zeros((6, 8), np.uint8)
    mask[1, 0] = 1
    soft = np.zeros((1, 6, 8), np.float32)
    soft[0, 1, 0] = 0.5
    t = SegmentationTransform(0, train=True, hflip=1.0, vflip=1.0)
    out, m, s, scale = t(img, mask, soft)
    assert m[4, 7] == 1 and m.sum() == 1 and s[0, 4, 7] == 0.5 and scale == (1.0, 1.0)
    torch.testing.assert_close(out, torch.from_numpy(img[::-1, ::-1].copy()).permute(2, 0, 1).float() / 255)


def test_segmentation_crop_pads_small_images_and_keeps_pairing():
    img = np.zeros((20, 30, 3), np.uint8)
    mask = np.zeros((20, 30), np.uint8)
    img[5:15, 5:25] = 255
    mask[5:15, 5:25] = 1
    torch.manual_seed(0)
    out, m, _, _ = SegmentationTransform(32, train=True)(img, mask)
    assert out.shape == (3, 32, 32) and m.shape == (32, 32)
    assert torch.equal(out[0] > 0.5, m > 0.5)  # image and mask were cropped/padded identically


def test_segmentation_eval_resize_scale():
    out, m, _, scale = SegmentationTransform(0, train=False, eval_size=16)(_image(32, 64), np.ones((32, 64), np.uint8))
    assert out.shape == (3, 16, 16) and m.shape == (16, 16) and scale == (0.5, 0.25)


def test_detection_keep_ratio_resize_like_mmdet():
    img = _image(100, 200)
    box = np.array([[10, 20, 50, 60]], np.float32)
    # eval: short side 50 -> (50, 100); with a long-side cap of 80 the long side wins -> (40, 80)
    out, boxes, _, scale = DetectionTransform(50, train=False, resize="short")(img, box, np.array([0]))
    assert out.shape == (3, 50, 100) and scale == (0.5, 0.5)
    torch.testing.assert_close(boxes, torch.tensor([[5.0, 10.0, 25.0, 30.0]]))
    out, _, _, scale = DetectionTransform(50, train=False, resize="short", max_size=80)(img, box, np.array([0]))
    assert out.shape == (3, 40, 80) and scale == (0.4, 0.4)
    # train: the short side is drawn from the scales
    t = DetectionTransform(50, train=True, hflip=0.0, resize="short", scales=[30, 60])
    shorts = set()
    for seed in range(8):
        torch.manual_seed(seed)
        shorts.add(t(img, box, np.array([0]))[0].shape[1])
    assert shorts == {30, 60}


def test_build_transform_matches_config():
    from kdinspect.config import DataConfig
    from kdinspect.data import build_transform

    cfg = DataConfig(imgsz=64, params={"resize": "short", "scales": [48, 64], "max_size": 100, "vflip": 1.0})
    tf = build_transform(cfg, "detection", train=False)
    out, *_ = tf(_image(32, 64), np.zeros((0, 4)), np.zeros(0))
    assert out.shape == (3, 50, 100)  # eval: fixed short side 64, long side capped at 100
    with pytest.raises(ValueError, match="resize must be"):
        build_transform(DataConfig(params={"resize": "letterbox"}), "detection", train=False)
