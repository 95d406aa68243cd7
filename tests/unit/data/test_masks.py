"""Mask values: 0/1 masks are read as masks, other values are thresholded at > 127 and reported by ``data check``."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from kdinspect.data import SegmentationDataset, load_mask, read_masks
from kdinspect.data.check import check_dataset
from kdinspect.data.io import mask_values_note


def _square(value: int, size: int = 16) -> np.ndarray:
    arr = np.zeros((size, size), dtype=np.uint8)
    arr[4:8, 4:10] = value
    return arr


def test_zero_one_mask_is_read_as_defect(tmp_path):
    path = tmp_path / "m.png"
    Image.fromarray(_square(1)).save(path)
    mask = load_mask(path)
    assert mask.dtype == np.uint8 and mask.sum() == 24 and mask[5, 5] == 1


def test_zero_255_and_mode_1_masks(tmp_path):
    Image.fromarray(_square(255)).save(tmp_path / "a.png")
    Image.fromarray(_square(255)).convert("1").save(tmp_path / "b.png")
    for name in ("a.png", "b.png"):
        assert load_mask(tmp_path / name).sum() == 24
        assert mask_values_note(tmp_path / name) is None


def test_grey_mask_is_thresholded_at_127(tmp_path):
    arr = _square(200)
    arr[0, :3] = 100  # soft edge: below the threshold
    Image.fromarray(arr).save(tmp_path / "g.png")
    assert load_mask(tmp_path / "g.png").sum() == 24
    note = mask_values_note(tmp_path / "g.png")
    assert note is not None and "thresholded at > 127" in note[1] and "{0, 100, 200}" in note[0]


def test_rgb_colour_mask_note_says_what_is_read(tmp_path):
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[4:8, 4:10] = (255, 0, 0)  # red defect: L = 76, below the threshold
    Image.fromarray(rgb).save(tmp_path / "c.png")
    note = mask_values_note(tmp_path / "c.png")
    assert note is not None and note[1].endswith(": 0 defect pixels") and "mode RGB" in note[0]


@pytest.fixture
def masks(synthetic_seg, tmp_path):
    root = tmp_path / "masks"
    shutil.copytree(synthetic_seg, root)
    return root


def test_check_reports_mask_values_and_dataset_reads_01_masks(masks):
    one = masks / "masks" / "train" / "train_0000.png"
    grey = masks / "masks" / "train" / "train_0001.png"
    Image.fromarray((np.asarray(Image.open(one)) > 127).astype(np.uint8)).save(one)
    soft = np.asarray(Image.open(grey)).copy()
    soft[soft > 0] = 180
    soft[0, 0] = 90
    Image.fromarray(soft).save(grey)
    report = check_dataset(masks)
    found = {p.path: p for p in report.problems if p.kind == "mask_values"}
    assert set(found) == {str(one), str(grey)}
    assert report.ok and all(p.severity == "warning" for p in found.values())
    assert "read as 1 = defect" in found[str(one)].action + found[str(one)].message
    assert "thresholded at > 127" in found[str(grey)].action + found[str(grey)].message
    ds = SegmentationDataset(read_masks(masks, "train"))
    rec = next(i for i, r in enumerate(ds.records) if r.mask == one)
    assert float(ds[rec].target.mask.sum()) > 0
