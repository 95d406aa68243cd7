"""Reference images in the data layer: readers/layouts, paired transform, dataset, collate, data check."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from kdinspect.config import DataConfig
from kdinspect.data import build_dataset, collate, read_deeppcb
from kdinspect.data.check import check_dataset
from kdinspect.data.paired import PairedDetectionTransform
from kdinspect.data.synthetic import generate_detection_dataset


@pytest.fixture(scope="module")
def paired_yolo(tmp_path_factory: pytest.TempPathFactory):
    return generate_detection_dataset(
        tmp_path_factory.mktemp("paired"), 6, 3, seed=1, imgsz=64, fmt="yolo", paired=True
    )


def _cfg(root, **params) -> DataConfig:
    return DataConfig(format="yolo", root=str(root), train="train", val="val", imgsz=64, params=params)


def test_synthetic_paired_mode_same_images_plus_defect_free_references(tmp_path, paired_yolo) -> None:
    plain = generate_detection_dataset(tmp_path / "plain", 6, 3, seed=1, imgsz=64, fmt="yolo")
    a = (paired_yolo / "images" / "train" / "train_0002.png").read_bytes()
    assert a == (plain / "images" / "train" / "train_0002.png").read_bytes()
    ref = np.asarray(Image.open(paired_yolo / "references" / "train" / "train_0002.png"), np.float64)
    img = np.asarray(Image.open(paired_yolo / "images" / "train" / "train_0002.png"), np.float64)
    inside = np.zeros_like(img, bool)
    for line in (paired_yolo / "labels" / "train" / "train_0002.txt").read_text().splitlines():
        cx, cy, bw, bh = (float(v) * 64 for v in line.split()[1:5])
        inside[int(cy - bh / 2) : int(cy + bh / 2) + 2, int(cx - bw / 2) : int(cx + bw / 2) + 2] = True
    diff = np.abs(img - ref)
    assert diff[~inside].mean() < 3.0  # only sensor noise outside the defects
    assert diff[inside].mean() > diff[~inside].mean() + 3.0


def test_paired_dataset_shares_geometry_and_collates_references(paired_yolo) -> None:
    cfg = dataclasses.replace(_cfg(paired_yolo, reference="auto", hflip=1.0))
    ds = build_dataset(cfg, "train", "detection", train=True)
    sample = ds[0]
    assert sample.reference is not None and sample.reference.shape == sample.image.shape
    # the reference was flipped like the image: outside the boxes they agree up to noise
    assert (sample.image - sample.reference).abs().mean() < 0.05
    unflipped = sample.reference.flip(-1)
    assert (sample.image - unflipped).abs().mean() > (sample.image - sample.reference).abs().mean() * 1.5
    batch = collate([ds[0], ds[1]])
    assert batch.references is not None and batch.references.shape == batch.images.shape
    assert batch.to("cpu").references is not None
    single = build_dataset(_cfg(paired_yolo), "train", "detection", train=False)
    assert single[0].reference is None and collate([single[0]]).references is None


def test_paired_transform_jitters_each_image_separately() -> None:
    torch.manual_seed(0)
    t = PairedDetectionTransform(32, train=True, hflip=0.0, jitter=0.8)
    img = np.full((32, 32, 3), 120, np.uint8)
    a, b, boxes, _labels, scale = t(img, img.copy(), np.array([[2, 2, 20, 20]]), np.array([1]))
    assert not torch.allclose(a, b)  # two colour draws
    assert boxes.shape == (1, 4) and scale == (1.0, 1.0)
    with pytest.raises(ValueError, match="reference shape"):
        t(img, img[:16], np.zeros((0, 4)), np.zeros(0, np.int64))


def test_missing_and_mismatched_references_are_reported_by_file(tmp_path, paired_yolo) -> None:
    import shutil

    root = tmp_path / "d"
    shutil.copytree(paired_yolo, root)
    (root / "references" / "train" / "train_0001.png").unlink()
    Image.new("L", (40, 40)).save(root / "references" / "train" / "train_0003.png")
    report = check_dataset(root, fmt="yolo", splits=["train"], params={"reference": "auto"})
    kinds = {(p.kind, p.path.split("/")[-1]) for p in report.problems}
    assert ("missing_reference", "train_0001.png") in kinds
    assert ("reference_size_mismatch", "train_0003.png") in kinds
    assert not report.ok
    ds = build_dataset(_cfg(root, reference="auto"), "train", "detection", train=False)
    ids = [r.image_id for r in ds.records]
    assert "train_0001" not in ids and "train_0003" in ids  # left out (reported), resized (reported)
    assert ds[ids.index("train_0003")].reference.shape == (3, 64, 64)
    one = build_dataset(_cfg(root, reference="references/train/train_0000.png"), "train", "detection", train=False)
    assert len(one) == 6 and all(r.extra["reference"].name == "train_0000.png" for r in one.records)
    with pytest.raises(FileNotFoundError, match="nothere.png"):
        build_dataset(_cfg(root, reference="nothere.png"), "train", "detection", train=False)


def test_deeppcb_pairs_load_their_template(shared_data) -> None:
    root = shared_data / "deeppcb"
    index = read_deeppcb(root, "test")
    rec = index.records[0]
    assert rec.extra["template"].name.endswith("_temp.jpg")
    cfg = DataConfig(format="deeppcb", root=str(root), train="trainval", val="test", imgsz=320, limit=2)
    cfg = dataclasses.replace(cfg, params={"reference": "auto"})
    ds = build_dataset(cfg, "val", "detection", train=False)
    s = ds[0]
    assert s.reference.shape == s.image.shape == (3, 320, 320)
    assert (s.image - s.reference).abs().mean() < 0.2  # aligned template: most pixels agree


def test_paired_dataset_registers_shifted_references(tmp_path) -> None:
    import cv2

    root = tmp_path / "boards"
    (root / "labels" / "train").mkdir(parents=True)
    (root / "references" / "train").mkdir(parents=True)
    (root / "images" / "train").mkdir(parents=True)
    (root / "classes.txt").write_text("open\n")
    rng = np.random.default_rng(0)
    for k in range(2):
        board = np.full((96, 96), 30, np.uint8)
        for _ in range(25):
            x, y = rng.integers(0, 80, 2)
            w, h = rng.integers(4, 24, 2)
            cv2.rectangle(board, (int(x), int(y)), (int(x + w), int(y + h)), 220, -1)
        m = cv2.getRotationMatrix2D((48, 48), 1.0, 1.0)
        m[:, 2] += (2.0, -2.0)
        cv2.imwrite(str(root / "images" / "train" / f"b{k}.png"), board)
        cv2.imwrite(str(root / "references" / "train" / f"b{k}.png"), cv2.warpAffine(board, m, (96, 96)))
        (root / "labels" / "train" / f"b{k}.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    errs = {}
    for align in ("none", "ecc"):
        cfg = _cfg(root, reference="auto", align=align)
        ds = build_dataset(dataclasses.replace(cfg, imgsz=96), "train", "detection", train=False)
        errs[align] = [float((ds[i].image - ds[i].reference)[:, 8:-8, 8:-8].abs().mean()) for i in range(2)]
    assert all(e < 0.6 * n for e, n in zip(errs["ecc"], errs["none"])), errs
    # robustness checks: move the references further (3 px, 1 degree); registration still recovers them
    for align in ("none", "ecc"):
        cfg = _cfg(root, reference="auto", align=align, reference_perturb=[3, 0, 1.0])
        ds = build_dataset(dataclasses.replace(cfg, imgsz=96), "train", "detection", train=False)
        errs[f"moved_{align}"] = [float((ds[i].image - ds[i].reference)[:, 8:-8, 8:-8].abs().mean()) for i in range(2)]
    assert all(m > n for m, n in zip(errs["moved_none"], errs["none"])), errs
    assert all(e < 0.6 * m for e, m in zip(errs["moved_ecc"], errs["moved_none"])), errs
    with pytest.raises(ValueError, match="align 'sift' not in"):
        build_dataset(_cfg(root, reference="auto", align="sift"), "train", "detection", train=False)
    with pytest.raises(ValueError, match="align needs data.params.reference"):
        build_dataset(_cfg(root, align="ecc"), "train", "detection", train=False)
