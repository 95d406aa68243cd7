from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from kdinspect.data.io import (
    ImageReadError,
    decode_crackforest_seg,
    load_crackforest_labels,
    load_image,
    load_mask,
    load_soft_label,
    read_image_size,
)


def _jpeg_bytes(h: int = 40, w: int = 50) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def test_load_image_rgb_and_gray(tmp_path):
    Image.fromarray(np.full((5, 7), 9, np.uint8)).save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert img.shape == (5, 7, 3) and img.dtype == np.uint8 and (img == 9).all()
    assert read_image_size(tmp_path / "g.png") == (5, 7)


def test_load_image_missing_truncated_garbage(tmp_path):
    with pytest.raises(ImageReadError, match="file not found"):
        load_image(tmp_path / "nope.jpg")
    data = _jpeg_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated") as err:
        load_image(tmp_path / "trunc.jpg")
    assert err.value.path.endswith("trunc.jpg")
    (tmp_path / "garbage.jpg").write_bytes(b"this is not an image")
    with pytest.raises(ImageReadError, match="not a recognised image"):
        load_image(tmp_path / "garbage.jpg")


def test_load_mask_png_modes(tmp_path):
    arr = np.zeros((4, 6), np.uint8)
    arr[1, 2] = 255
    arr[2, 3] = 100  # below threshold
    Image.fromarray(arr).save(tmp_path / "l.png")
    Image.fromarray(arr > 127).convert("1").save(tmp_path / "one.png")
    for name in ("l.png", "one.png"):
        m = load_mask(tmp_path / name)
        assert m.dtype == np.uint8 and m.sum() == 1 and m[1, 2] == 1
    with pytest.raises(ValueError, match="unknown mask_format"):
        load_mask(tmp_path / "l.png", "tiff-stack")


def test_seg_decoder_and_errors(tmp_path):
    (tmp_path / "a.seg").write_text("width 4\nheight 2\nsegments 2\ndata\n0 0 0 3\n1 1 0 1\n0 1 2 3\n")
    seg = decode_crackforest_seg(tmp_path / "a.seg")
    np.testing.assert_array_equal(seg, [[0, 0, 0, 0], [1, 1, 0, 0]])
    np.testing.assert_array_equal(load_mask(tmp_path / "a.seg", "crackforest-seg"), [[0, 0, 0, 0], [1, 1, 0, 0]])
    (tmp_path / "b.seg").write_text("width 4\nheight 2\ndata\n0 5 0 3\n")
    with pytest.raises(ImageReadError, match="outside"):
        decode_crackforest_seg(tmp_path / "b.seg")


def test_soft_label_png_and_npy(tmp_path):
    Image.fromarray(np.full((3, 4), 255, np.uint8)).save(tmp_path / "s.png")
    np.save(tmp_path / "s.npy", np.full((2, 3, 4), 0.25, np.float32))
    soft = load_soft_label([tmp_path / "s.png", tmp_path / "s.npy"])
    assert soft.shape == (3, 3, 4) and soft[0].min() == 1.0 and soft[1:].max() == 0.25
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 2] = 51  # channel c = teacher output c (MCFF-L writes h, x, y, mix as RGBA)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "r.png")
    soft = load_soft_label(tmp_path / "r.png")
    assert soft.shape == (4, 3, 4) and soft[2].max() == pytest.approx(0.2) and soft[[0, 1, 3]].max() == 0


def test_crackforest_mat_seg_agree_and_rule(shared_data):
    cf = shared_data / "crackforest"
    mat = load_crackforest_labels(cf / "groundTruth" / "093.mat", "crackforest-mat")
    seg = load_crackforest_labels(cf / "seg" / "093.seg", "crackforest-seg")
    np.testing.assert_array_equal(mat, seg)
    assert (mat == 3).sum() > 20000  # a large region enclosed by cracks, not crack pixels
    default = load_mask(cf / "groundTruth" / "093.mat", "crackforest-mat")
    assert default.sum() == (mat == 2).sum()
    loose = load_mask(cf / "groundTruth" / "093.mat", "crackforest-mat", extra_labels="crack")
    assert loose.sum() == (mat >= 2).sum() > default.sum()
