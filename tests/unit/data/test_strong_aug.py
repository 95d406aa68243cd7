"""Strong augmentation: 4-image mosaic, scale jitter (detection and segmentation), the close switch, image cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdinspect.config import DataConfig
from kdinspect.data.build import build_transform
from kdinspect.data.datasets import DetectionDataset, ImageCache, SegmentationDataset
from kdinspect.data.mosaic import mosaic4
from kdinspect.data.structures import DatasetIndex, DetRecord, SegRecord
from kdinspect.data.transforms import DetectionTransform, SegmentationTransform

COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]


def _pixel_box(image: np.ndarray, color: tuple[int, int, int]) -> list[float] | None:
    """xyxy (exclusive x2/y2) of the pixels of ``color`` in an (H, W, 3) image."""
    ys, xs = np.nonzero((image == np.array(color, dtype=image.dtype)).all(-1))
    if len(xs) == 0:
        return None
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def _tile(rects: list[tuple[list[int], int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    for (x1, y1, x2, y2), label in rects:
        image[y1:y2, x1:x2] = COLORS[label]
    boxes = np.array([r for r, _ in rects], dtype=np.float32).reshape(-1, 4)
    return image, boxes, np.array([lab for _, lab in rects], dtype=np.int64)


def test_mosaic_boxes_follow_their_tiles() -> None:
    tiles = [
        _tile([([40, 40, 60, 60], 0), ([20, 40, 40, 60], 4)]),  # the second is cut at the tile border
        _tile([([0, 40, 20, 60], 1)]),
        _tile([([40, 0, 60, 20], 2)]),
        _tile([([0, 0, 20, 20], 3), ([31, 0, 50, 20], 5)]),  # the second keeps a 1 px sliver: left out
    ]
    image, boxes, labels = mosaic4(tiles, 64, (32, 32))
    assert image.shape == (64, 64, 3)
    assert sorted(labels.tolist()) == [0, 1, 2, 3, 4]
    expected = {0: [8, 8, 28, 28], 1: [32, 8, 52, 28], 2: [8, 32, 28, 52], 3: [32, 32, 52, 52], 4: [0, 8, 8, 28]}
    for box, label in zip(boxes.tolist(), labels.tolist(), strict=True):
        assert box == expected[label]
        assert _pixel_box(image, COLORS[label]) == box  # the box bounds exactly the drawn pixels of its object
    assert _pixel_box(image, COLORS[5]) == [63.0, 32.0, 64.0, 52.0]  # the sliver's pixels are there, without a box


def test_detection_scale_jitter_moves_boxes_with_the_image() -> None:
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[30:60, 20:70] = 255
    t = DetectionTransform(64, train=True, hflip=0.0, scale_jitter=(0.5, 1.5))
    sizes = set()
    for seed in range(12):
        torch.manual_seed(seed)
        out, boxes, _, _ = t(image, np.array([[20, 30, 70, 60]], np.float32), np.array([1]))
        assert out.shape == (3, 64, 64)
        bright = (out.mean(0) > 0.5).nonzero()
        if len(boxes) == 0:  # cropped away: no object pixels left either
            assert len(bright) <= 64, seed
            continue
        x1, y1, x2, y2 = boxes[0].tolist()
        ys, xs = bright[:, 0].float(), bright[:, 1].float()
        assert abs(xs.min() - x1) <= 1.5 and abs(ys.min() - y1) <= 1.5, (seed, boxes)
        assert abs(xs.max() + 1 - x2) <= 1.5 and abs(ys.max() + 1 - y2) <= 1.5, (seed, boxes)
        sizes.add(round(x2 - x1))
    assert len(sizes) > 3  # the scale really varies (a plain resize gives 32 px every time)
    out, boxes, _, _ = t(image, np.array([[20, 30, 70, 60]], np.float32), np.array([1]), strong=False)
    torch.testing.assert_close(boxes, torch.tensor([[12.8, 19.2, 44.8, 38.4]]))  # off: the plain resize
    with pytest.raises(ValueError, match="resize=square"):
        DetectionTransform(64, train=True, resize="short", scale_jitter=(0.5, 1.5))


def test_segmentation_scale_jitter_keeps_masks_nearest_and_aligned() -> None:
    image = np.zeros((60, 80, 3), dtype=np.uint8)
    image[10:40, 20:50] = 255
    mask = (image[..., 0] > 0).astype(np.uint8)
    t = SegmentationTransform(0, train=True, hflip=0.0, vflip=0.0, scale_jitter=(0.5, 2.0))
    shapes = set()
    for seed in range(5):
        torch.manual_seed(seed)
        img, m, _, scale = t(image, mask)
        shapes.add(tuple(m.shape))
        assert set(m.unique().tolist()) <= {0.0, 1.0}
        assert scale == (m.shape[0] / 60, m.shape[1] / 80)
        agree = ((img.mean(0) > 0.5).float() == m).float().mean()
        assert agree > 0.97, (seed, agree)
    assert len(shapes) > 1
    _, m, _, _ = t(image, mask, strong=False)
    assert m.shape == (60, 80)


def _det_index(tmp_path: Path, n: int = 6) -> DatasetIndex:
    records = []
    for k in range(n):
        image = np.zeros((80, 80, 3), dtype=np.uint8)
        x1, y1 = 5 + 8 * k, 10 + 5 * k
        image[y1 : y1 + 24, x1 : x1 + 20] = COLORS[k]
        Image.fromarray(image).save(tmp_path / f"{k}.png")
        box = np.array([[x1, y1, x1 + 20, y1 + 24]], np.float32)
        records.append(DetRecord(tmp_path / f"{k}.png", box, np.array([k]), str(k), 80, 80))
    return DatasetIndex("detection", [f"c{k}" for k in range(n)], records, [], tmp_path)


def _det_ds(tmp_path: Path, **kw) -> DetectionDataset:
    t = DetectionTransform(64, train=True, hflip=0.5, scale_jitter=(0.8, 1.2))
    return DetectionDataset(_det_index(tmp_path), t, seed=3, **kw)


def test_mosaic_dataset_boxes_on_their_objects_and_deterministic(tmp_path: Path) -> None:
    ds = _det_ds(tmp_path, mosaic=1.0)
    other = _det_ds(tmp_path, mosaic=1.0, cache=ImageCache(2**20))
    seen, checked = set(), 0
    for i in range(len(ds)):
        s = ds[i]
        assert "mosaic" in s.meta.extra and len(s.meta.extra["mosaic"]) == 4
        seen |= set(s.meta.extra["mosaic"])
        img = (s.image.permute(1, 2, 0) * 255).round().numpy()
        for box, label in zip(s.target.boxes.tolist(), s.target.labels.tolist(), strict=True):
            x1, y1, x2, y2 = (round(v) for v in box)
            if x2 - x1 < 4 or y2 - y1 < 4:  # a sliver at a tile border: no inner pixels to look at
                continue
            inner = img[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].reshape(-1, 3)
            checked += 1
            match = (np.abs(inner - np.array(COLORS[label])) < 40).all(-1).mean()
            assert match > 0.9, (i, box, label, match)  # the box lies on its own object's pixels
        again, twin = ds[i], other[i]  # same (seed, epoch, index): same sample, cache or not
        assert torch.equal(again.image, s.image) and torch.equal(twin.image, s.image)
        assert torch.equal(again.target.boxes, s.target.boxes) and torch.equal(twin.target.boxes, s.target.boxes)
    assert len(seen) == 6 and checked >= 5
    first = ds[0]
    ds.set_epoch(1)
    assert not torch.equal(ds[0].image, first.image)


def test_close_strong_aug_turns_mosaic_and_scale_jitter_off(tmp_path: Path) -> None:
    ds = _det_ds(tmp_path, mosaic=1.0)
    ds.close_strong_at = 3
    ds.set_epoch(2)
    assert ds.strong_aug and "mosaic" in ds[1].meta.extra
    ds.set_epoch(3)
    assert not ds.strong_aug
    weak = DetectionDataset(_det_index(tmp_path), DetectionTransform(64, train=True, hflip=0.5), seed=3)
    weak.set_epoch(3)
    for i in range(len(ds)):
        s, w = ds[i], weak[i]
        assert "mosaic" not in s.meta.extra
        assert torch.equal(s.image, w.image) and torch.equal(s.target.boxes, w.target.boxes)  # flips stay on


def test_config_keys_reach_the_datasets(tmp_path: Path) -> None:
    from kdinspect.data.build import build_datasets

    cfg = DataConfig(
        format="synthetic-det",
        root=str(tmp_path / "data"),
        imgsz=64,
        cache=True,
        params={
            "n_train": 4,
            "n_val": 2,
            "mosaic": 0.5,
            "scale_jitter": [0.5, 1.5],
            "close_strong_aug": 2,
        },
    )
    train_ds, val_ds = build_datasets(cfg, "detection", seed=0, epochs=5)
    assert train_ds.mosaic == 0.5 and train_ds.close_strong_at == 3 and val_ds.mosaic == 0.0
    assert train_ds.cache is not None and train_ds.cache is val_ds.cache
    assert train_ds.transform.pipeline is not train_ds.transform.weak_pipeline
    assert val_ds.transform.pipeline is val_ds.transform.weak_pipeline  # evaluation: no scale jitter
    with pytest.raises(ValueError, match="scale_jitter"):
        build_transform(DataConfig(params={"scale_jitter": [2, 1]}), "detection", True)
    plain = build_datasets(DataConfig(format="synthetic-det", root=str(tmp_path / "data"), imgsz=64), "detection")[0]
    assert plain.mosaic == 0.0 and plain.close_strong_at is None and plain.cache is None


def test_image_cache_is_capped_and_read_only(tmp_path: Path) -> None:
    index = _det_index(tmp_path, 3)
    one = 80 * 80 * 3
    cache = ImageCache(2 * one)
    a = cache.load(index.records[0].image)
    assert cache.load(index.records[0].image) is a and not a.flags.writeable
    cache.load(index.records[1].image)
    c = cache.load(index.records[2].image)  # over the cap: decoded, not kept
    assert len(cache.images) == 2 and cache.nbytes == 2 * one and c.flags.writeable
    seg = DatasetIndex("segmentation", ["c"], [SegRecord(index.records[0].image, None, "0")], [], tmp_path)
    cached = SegmentationDataset(seg, SegmentationTransform(32, train=True), cache=ImageCache(2**20))
    fresh = SegmentationDataset(seg, SegmentationTransform(32, train=True))
    assert torch.equal(cached[0].image, fresh[0].image) and torch.equal(cached[0].image, cached[0].image)


def test_mosaic_with_an_unreadable_partner_skips_the_sample_naming_the_file(tmp_path: Path) -> None:
    from kdinspect.data.datasets import SkippedSample

    ds = _det_ds(tmp_path, mosaic=1.0)
    (tmp_path / "5.png").write_bytes(b"not a png")
    results = [ds[i] for i in range(5)]  # sample 5 itself is unreadable; the others may draw it as a partner
    skipped = [s for s in results if isinstance(s, SkippedSample)]
    assert skipped and all(s.path.endswith("5.png") for s in skipped)
    kept = [s for s in results if not isinstance(s, SkippedSample)]
    assert kept and all("5" not in s.meta.extra["mosaic"] for s in kept)
