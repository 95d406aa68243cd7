from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

from kdinspect.data import read_masks, read_voc
from kdinspect.data.io import load_image, load_mask
from kdinspect.data.synthetic import (
    SYNTHETIC_DET_CLASSES,
    ensure_synthetic,
    generate_detection_dataset,
    generate_segmentation_dataset,
)


def _digest(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("fmt", ["voc", "coco", "yolo"])
def test_detection_generator_is_deterministic(tmp_path, fmt):
    a = _digest(generate_detection_dataset(tmp_path / "a", 5, 2, seed=1, imgsz=64, fmt=fmt))
    b = _digest(generate_detection_dataset(tmp_path / "b", 5, 2, seed=1, imgsz=64, fmt=fmt))
    c = _digest(generate_detection_dataset(tmp_path / "c", 5, 2, seed=2, imgsz=64, fmt=fmt))
    assert a == b and a != c and len(a) >= 7


def test_segmentation_generator_is_deterministic(tmp_path):
    a = _digest(generate_segmentation_dataset(tmp_path / "a", 4, 2, seed=1, size=(48, 64)))
    assert a == _digest(generate_segmentation_dataset(tmp_path / "b", 4, 2, seed=1, size=(48, 64)))


def test_detection_set_is_fast_readable_and_distinct(tmp_path):
    t0 = time.perf_counter()
    root = generate_detection_dataset(tmp_path / "d", 48, 16, seed=0, imgsz=128)
    assert time.perf_counter() - t0 < 2.0
    idx = read_voc(root, "train", SYNTHETIC_DET_CLASSES)
    assert len(idx.records) == 48 and not idx.problems
    assert set(np.concatenate([r.labels for r in idx.records]).tolist()) == {0, 1, 2, 3}
    # defects stand out from the surface: mean |deviation| from the image median is larger inside boxes
    inside, outside = [], []
    for rec in idx.records[:16]:
        img = load_image(rec.image)[..., 0].astype(float)
        dev = np.abs(img - np.median(img))
        m = np.zeros(img.shape, bool)
        for x1, y1, x2, y2 in rec.boxes.astype(int):
            m[y1:y2, x1:x2] = True
        inside.append(dev[m].mean())
        outside.append(dev[~m].mean())
    assert np.mean(inside) > 2 * np.mean(outside)


def test_segmentation_set_is_readable(tmp_path):
    root = generate_segmentation_dataset(tmp_path / "s", 8, 4, seed=0, size=(64, 80))
    idx = read_masks(root, "train")
    assert len(idx.records) == 8 and not idx.problems
    img, mask = load_image(idx.records[0].image), load_mask(idx.records[0].mask)
    assert img.shape == (64, 80, 3) and mask.shape == (64, 80)
    total = sum(load_mask(r.mask).sum() for r in idx.records)
    assert total > 0


def test_ensure_synthetic_reuses_and_refuses_foreign_folders(tmp_path):
    root = ensure_synthetic(tmp_path / "s", "segmentation", n_train=2, n_val=1, seed=0, size=(32, 32))
    before = _digest(root)
    ensure_synthetic(root, "segmentation", n_train=2, n_val=1, seed=0, size=(32, 32))
    assert _digest(root) == before
    ensure_synthetic(root, "segmentation", n_train=3, n_val=1, seed=0, size=(32, 32))
    assert len(list((root / "images" / "train").iterdir())) == 3
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "mine.txt").write_text("x")
    with pytest.raises(FileExistsError):
        ensure_synthetic(tmp_path / "user", "segmentation", n_train=1, n_val=1, seed=0, size=(32, 32))
