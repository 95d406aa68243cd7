from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from kdinspect.config import DataConfig
from kdinspect.data import (
    DetectionDataset,
    DetectionTransform,
    SegmentationDataset,
    SegmentationTransform,
    SkippedSample,
    build_dataset,
    collate,
    read_masks,
    read_voc,
)
from kdinspect.data.structures import DetTarget, SegTarget
from kdinspect.data.synthetic import SYNTHETIC_DET_CLASSES


def test_detection_sample_contract(synthetic_det):
    ds = DetectionDataset(read_voc(synthetic_det, "val", SYNTHETIC_DET_CLASSES), DetectionTransform(64, train=False))
    s = ds[0]
    assert s.image.shape == (3, 64, 64) and s.image.dtype == torch.float32
    assert isinstance(s.target, DetTarget) and s.target.boxes.dtype == torch.float32
    assert s.target.labels.dtype == torch.int64
    assert s.meta.orig_size == (96, 96) and s.meta.input_size == (64, 64) and s.meta.scale == (64 / 96, 64 / 96)
    rec = ds.records[0]
    torch.testing.assert_close(s.target.boxes, torch.from_numpy(rec.boxes) * (64 / 96))


def test_augmentation_is_seeded_per_epoch_and_index(synthetic_det):
    idx = read_voc(synthetic_det, "train", SYNTHETIC_DET_CLASSES)
    ds = DetectionDataset(idx, DetectionTransform(64, train=True, hflip=0.5, jitter=0.3), seed=5)
    draws = [ds[i].image for i in range(8)]
    again = [ds[i].image for i in reversed(range(8))][::-1]  # order does not matter
    assert all(torch.equal(a, b) for a, b in zip(draws, again))
    ds.set_epoch(1)
    assert any(not torch.equal(a, ds[i].image) for i, a in enumerate(draws))
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate)
    ds.set_epoch(0)
    batched = torch.cat([b.images for b in loader])[:8]
    torch.testing.assert_close(batched, torch.stack(draws))  # same data with 2 worker processes


def test_corrupt_image_is_skipped_and_listed(synthetic_det, tmp_path, caplog):
    root = tmp_path / "copy"
    shutil.copytree(synthetic_det, root)
    bad = root / "JPEGImages" / "val_0001.png"
    bad.write_bytes(bad.read_bytes()[:100])
    ds = DetectionDataset(read_voc(root, "val", SYNTHETIC_DET_CLASSES), DetectionTransform(64, train=False))
    out = ds[1]
    assert isinstance(out, SkippedSample) and not out and out.path == str(bad)
    assert "val_0001.png" in caplog.text
    batch = collate([ds[0], out, ds[2], None])
    assert len(batch) == 2 and batch.skipped == [str(bad), "<unknown>"]


def test_collate_pads_to_multiple_of_32(synthetic_seg):
    idx = read_masks(synthetic_seg, "val")
    ds = SegmentationDataset(idx, SegmentationTransform(0, train=False))
    batch = collate([ds[0], ds[1]])
    assert batch.images.shape == (2, 3, 64, 96)  # 64x80 -> width padded to 96
    t = batch.targets[0]
    assert isinstance(t, SegTarget) and t.mask.shape == (64, 96) and t.mask[:, 80:].sum() == 0
    assert batch.metas[0].input_size == (64, 80)
    empty = collate([None])
    assert empty.images.shape[0] == 0 and empty.skipped == ["<unknown>"]


def test_soft_labels_follow_the_mask(synthetic_seg, tmp_path):
    root = tmp_path / "seg"
    shutil.copytree(synthetic_seg, root)
    (root / "soft").mkdir()
    for p in (root / "masks" / "val").iterdir():
        shutil.copy(p, root / "soft" / p.name)  # soft label = the mask itself (as a 0/255 probability map)
    idx = read_masks(root, "val", soft_labels="soft")
    ds = SegmentationDataset(idx, SegmentationTransform(32, train=True, hflip=1.0, vflip=1.0))
    s = ds[0]
    assert s.target.soft.shape == (1, 32, 32)
    torch.testing.assert_close(s.target.soft[0], s.target.mask)
    batch = collate([ds[0], ds[1]])
    assert batch.targets[1].soft.shape == (1, 32, 32)


def test_soft_label_missing_is_reported(synthetic_seg):
    idx = read_masks(synthetic_seg, "val", soft_labels="nowhere")
    assert not idx.records and {p.kind for p in idx.problems} == {"missing_soft_label"}


def test_mask_size_mismatch_is_skipped(synthetic_seg, tmp_path):
    root = tmp_path / "seg"
    shutil.copytree(synthetic_seg, root)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "masks" / "val" / "val_0000.png")
    out = SegmentationDataset(read_masks(root, "val"))[0]
    assert isinstance(out, SkippedSample) and "differs" in out.reason


def test_build_dataset_synthetic_and_limits(tmp_path):
    cfg = DataConfig(format="synthetic-seg", root="", imgsz=32, limit=5, params={"n_train": 6, "n_val": 2})
    ds = build_dataset(cfg, "train", "segmentation", train=True, run_dir=tmp_path)
    assert isinstance(ds, SegmentationDataset) and len(ds) == 5 and (tmp_path / "data" / "synthetic.json").is_file()
    assert ds[0].image.shape == (3, 32, 32)
    val = build_dataset(cfg, "val", "segmentation", train=False, run_dir=tmp_path)
    assert len(val) == 2 and val[0].image.shape == (3, 128, 160)
    det = build_dataset(
        DataConfig(
            format="synthetic-det",
            root=str(tmp_path / "d"),
            imgsz=64,
            params={"n_train": 4, "n_val": 2, "imgsz": 80, "vflip": 0.5},
        ),
        "train",
        "detection",
        train=True,
    )
    assert det.classes == SYNTHETIC_DET_CLASSES and det[0].meta.orig_size == (80, 80)


def test_build_dataset_errors(tmp_path, shared_data):
    with pytest.raises(KeyError, match="synthetic-det"):
        build_dataset(DataConfig(format="pascal"), "train", "detection", train=True, run_dir=tmp_path)
    with pytest.raises(KeyError, match="one_based"):
        build_dataset(
            DataConfig(format="voc", root=str(shared_data / "neu-det"), params={"bogus": 1}),
            "train",
            "detection",
            train=True,
        )
    with pytest.raises(ValueError, match="gives detection data"):
        build_dataset(
            DataConfig(format="voc", root=str(shared_data / "neu-det"), val="test"), "val", "segmentation", train=False
        )
    with pytest.raises(ValueError, match="'train' or 'val'"):
        build_dataset(DataConfig(format="voc", root=str(shared_data / "neu-det")), "test", "detection", train=False)


def test_build_dataset_real_neu(shared_data):
    cfg = DataConfig(format="voc", root=str(shared_data / "neu-det"), train="trainval", val="test", imgsz=224, limit=4)
    ds = build_dataset(cfg, "val", "detection", train=False)
    assert len(ds) == 4 and len(ds.classes) == 6
    batch = collate([ds[i] for i in range(4)])
    assert batch.images.shape == (4, 3, 224, 224) and batch.metas[0].scale == (1.12, 1.12)
