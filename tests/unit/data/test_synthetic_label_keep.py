"""``label_keep``: incomplete training masks on the same images; validation masks stay complete."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from kdinspect.data.synthetic import generate_segmentation_dataset, read_synthetic_seg


def _png(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_incomplete_train_masks_same_images_complete_val(tmp_path):
    full = generate_segmentation_dataset(tmp_path / "full", 6, 2, seed=3, size=(40, 48))
    part = generate_segmentation_dataset(tmp_path / "part", 6, 2, seed=3, size=(40, 48), label_keep=0.3)
    kept = total = 0
    for split in ("train", "val"):
        for path in sorted((full / "images" / split).glob("*.png")):
            assert np.array_equal(_png(path), _png(part / "images" / split / path.name))
            m_full = _png(full / "masks" / split / path.name) > 0
            m_part = _png(part / "masks" / split / path.name) > 0
            assert not (m_part & ~m_full).any()  # only removes crack pixels, never adds
            if split == "val":
                assert np.array_equal(m_full, m_part)
            else:
                kept, total = kept + int(m_part.sum()), total + int(m_full.sum())
    assert total > 0 and 0.1 < kept / total < 0.6


def test_label_keep_is_validated_and_recorded(tmp_path):
    with pytest.raises(ValueError, match="label_keep"):
        generate_segmentation_dataset(tmp_path / "x", 1, 1, label_keep=0.0)
    read_synthetic_seg(tmp_path / "p", "train", n_train=2, n_val=1, size=(32, 32), label_keep=0.5)
    assert '"label_keep": 0.5' in (tmp_path / "p" / "synthetic.json").read_text()
    read_synthetic_seg(tmp_path / "c", "train", n_train=2, n_val=1, size=(32, 32))
    assert "label_keep" not in (tmp_path / "c" / "synthetic.json").read_text()
