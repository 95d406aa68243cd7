from __future__ import annotations

import numpy as np
import pytest

from kdinspect.data import DATASETS, read_coco, read_crackforest, read_deepcrack, read_deeppcb, read_voc, read_yolo
from kdinspect.data.segmentation import CRACKFOREST_TEST, CRACKFOREST_TRAIN
from kdinspect.data.synthetic import SYNTHETIC_DET_CLASSES, generate_detection_dataset

NEU_CLASSES = ["crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches"]


def test_neu_test_split_counts_and_classes(shared_data):
    idx = read_voc(shared_data / "neu-det", "test")
    assert idx.classes == NEU_CLASSES
    assert len(idx.records) == 360 and sum(len(r.boxes) for r in idx.records) == 803
    assert not idx.problems


def test_neu_labels_come_from_xml_not_file_name(shared_data, tmp_path):
    (tmp_path / "one.txt").write_text("scratches_108\n")
    idx = read_voc(shared_data / "neu-det", str(tmp_path / "one.txt"))
    (rec,) = idx.records
    names = [idx.classes[i] for i in rec.labels]
    assert names == ["scratches", "inclusion", "inclusion", "inclusion"]
    # one_based: VOC xmin=133, ymin=129 -> 132, 128; xmax/ymax kept
    assert rec.boxes[1, 0] == 132 and rec.boxes[1, 1] == 128
    assert rec.width == 200 and rec.height == 200 and rec.image.name == "scratches_108.jpg"


def test_neu_filename_without_extension(shared_data, tmp_path):
    (tmp_path / "ids.txt").write_text("pitted_surface_1\n")
    idx = read_voc(shared_data / "neu-det", str(tmp_path / "ids.txt"))
    assert idx.records[0].image.name == "pitted_surface_1.jpg"


def test_voc_unknown_split_lists_valid(shared_data):
    with pytest.raises(ValueError, match="trainval"):
        read_voc(shared_data / "neu-det", "nosuchsplit")


def test_deeppcb_test_split(shared_data):
    idx = read_deeppcb(shared_data / "deeppcb", "test")
    assert len(idx.records) == 252 and sum(len(r.boxes) for r in idx.records) == 1590
    rec = idx.records[0]
    assert rec.image.name.endswith("_test.jpg") and rec.extra["template"].name.endswith("_temp.jpg")
    assert rec.width == 640 and not idx.problems


def test_deeppcb_annotation_parsing_spaces_and_commas(tmp_path):
    pcb = tmp_path / "PCBData"
    (pcb / "g1" / "1").mkdir(parents=True)
    (pcb / "g1" / "1_not").mkdir()
    from PIL import Image

    for suffix in ("test", "temp"):
        Image.new("L", (64, 64)).save(pcb / "g1" / "1" / f"0001_{suffix}.jpg")
    (pcb / "g1" / "1_not" / "0001.txt").write_text("1 2 10 12 1\n3,4,20,30,6\n5 5 9 9 7\n")
    (pcb / "test.txt").write_text("g1/1/0001.jpg g1/1_not/0001.txt\n")
    idx = read_deeppcb(tmp_path, "test")
    np.testing.assert_array_equal(idx.records[0].labels, [0, 5])
    assert [p.kind for p in idx.problems] == ["unknown_class"]


def test_deepcrack_splits(shared_data):
    assert len(read_deepcrack(shared_data / "deepcrack", "train").records) == 300
    test = read_deepcrack(shared_data / "deepcrack", "test")
    assert len(test.records) == 237 and test.classes == ["crack"]
    assert test.records[0].mask.parent.name == "test_lab"


def test_crackforest_split_is_fixed_and_disjoint(shared_data):
    root = shared_data / "crackforest"
    train, test, all_ = (read_crackforest(root, s) for s in ("train", "test", "all"))
    ids_train = {r.image_id for r in train.records}
    ids_test = {r.image_id for r in test.records}
    assert len(ids_train) == CRACKFOREST_TRAIN and len(ids_test) == CRACKFOREST_TEST
    assert not ids_train & ids_test and ids_train | ids_test == {r.image_id for r in all_.records}
    assert len(all_.records) == 118
    assert {r.image_id for r in read_crackforest(root, "test").records} == ids_test
    warn = [p for p in train.problems if p.kind == "missing_annotation"]
    assert len(warn) == 37 and all(p.severity == "warning" for p in warn)
    seg = read_crackforest(root, "train", source="seg", extra_labels="crack")
    assert seg.records[0].mask.suffix == ".seg" and seg.records[0].extra["extra_labels"] == "crack"


@pytest.mark.parametrize("fmt", ["coco", "yolo"])
def test_coco_yolo_readers_match_voc(tmp_path, fmt):
    voc = read_voc(generate_detection_dataset(tmp_path / "voc", 6, 2, seed=3, imgsz=64), "train", SYNTHETIC_DET_CLASSES)
    root = generate_detection_dataset(tmp_path / fmt, 6, 2, seed=3, imgsz=64, fmt=fmt)
    other = (read_coco if fmt == "coco" else read_yolo)(root, "train")
    assert other.classes == SYNTHETIC_DET_CLASSES
    for a, b in zip(voc.records, other.records):
        # VOC stores integer 1-based pixels, so boxes agree exactly after the one-based shift
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
        np.testing.assert_array_equal(a.labels, b.labels)


def test_datasets_registry_names():
    assert {
        "voc",
        "coco",
        "yolo",
        "deeppcb",
        "masks",
        "deepcrack",
        "crackforest",
        "synthetic-det",
        "synthetic-seg",
        "neu-fewshot",
    } <= set(DATASETS)


def test_masks_reader_flat_folders_and_list_files(tmp_path):
    from PIL import Image

    from kdinspect.data import read_masks

    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for name in ("a", "b", "c"):
        Image.new("RGB", (8, 6)).save(tmp_path / "images" / f"{name}.jpg")
        if name != "c":
            Image.new("L", (8, 6)).save(tmp_path / "masks" / f"{name}.png")
    Image.new("L", (8, 6)).save(tmp_path / "masks" / "orphan.png")
    idx = read_masks(tmp_path, "all")
    assert [r.image_id for r in idx.records] == ["a", "b"]
    assert sorted(p.kind for p in idx.problems) == ["missing_image", "missing_mask"]
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "val.txt").write_text("images/b.jpg,masks/b.png\nb\nzzz\n")
    idx = read_masks(tmp_path, "val")
    assert [r.image_id for r in idx.records] == ["b"]  # both line forms name b: read once, the repeat reported
    assert [p.kind for p in idx.problems] == ["duplicate_split_entry", "missing_split_entry"]
    with pytest.raises(ValueError, match="unknown split"):
        read_masks(tmp_path, "test")


def test_coco_crowd_and_dangling_annotations(tmp_path):
    import json

    root = generate_detection_dataset(tmp_path / "coco", 2, 1, seed=0, imgsz=64, fmt="coco")
    doc = json.loads((root / "annotations" / "train.json").read_text())
    doc["annotations"].append({"id": 99, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 1})
    doc["annotations"].append({"id": 100, "image_id": 42, "category_id": 1, "bbox": [1, 1, 5, 5]})
    (root / "annotations" / "train.json").write_text(json.dumps(doc))
    idx = read_coco(root, "train")
    kinds = {p.kind: p for p in idx.problems}
    assert kinds["crowd_annotation"].severity == "warning" and "1 crowd" in kinds["crowd_annotation"].message
    assert "unknown image_id 42" in kinds["bad_annotation"].message
