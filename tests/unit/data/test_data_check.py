from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from kdinspect.data.check import check_dataset, detect_format
from kdinspect.data.synthetic import generate_detection_dataset


@pytest.fixture
def voc(synthetic_det, tmp_path):
    root = tmp_path / "voc"
    shutil.copytree(synthetic_det, root)
    return root


@pytest.fixture
def masks(synthetic_seg, tmp_path):
    root = tmp_path / "masks"
    shutil.copytree(synthetic_seg, root)
    return root


def _only(report, kind):
    found = [p for p in report.problems if p.kind == kind]
    assert found, f"no {kind} in {report.problems}"
    return found


def _set_box(xml_path, box):
    text = xml_path.read_text()
    start, end = text.index("<bndbox>"), text.index("</bndbox>")
    new = "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
    xml_path.write_text(text[: start + len("<bndbox>")] + new + text[end:])


def test_clean_data_is_ok(voc, masks):
    for root, task in ((voc, "detection"), (masks, "segmentation")):
        report = check_dataset(root)
        assert report.ok and not report.problems and report.task == task
        assert report.total["images"] == 32 if task == "detection" else 16
    d = check_dataset(voc).to_dict()
    json.dumps(d)
    assert d["ok"] and d["sizes"] == {"96x96": 32} and set(d["splits"]) == {"train", "val"}


def test_corrupt_image(voc):
    bad = voc / "JPEGImages" / "train_0003.png"
    bad.write_bytes(b"\x89PNG not really")
    report = check_dataset(voc)
    assert not report.ok and _only(report, "corrupt_image")[0].path == str(bad)
    assert report.to_text().endswith(f"({report.seconds:.1f} s)") and str(bad) in report.to_text()


def test_truncated_jpeg(voc):
    src = voc / "JPEGImages" / "val_0002.png"
    Image.open(src).convert("RGB").save(voc / "JPEGImages" / "val_0002.jpg", quality=95)
    src.unlink()
    data = (voc / "JPEGImages" / "val_0002.jpg").read_bytes()
    (voc / "JPEGImages" / "val_0002.jpg").write_bytes(data[: len(data) * 2 // 3])
    (p,) = _only(check_dataset(voc), "corrupt_image")
    assert p.path.endswith("val_0002.jpg") and "truncated" in p.message


def test_box_outside_image_clipped_or_rejected(voc):
    _set_box(voc / "Annotations" / "train_0001.xml", (50, 50, 140, 90))  # partly outside the 96 px frame
    _set_box(voc / "Annotations" / "train_0002.xml", (120, 120, 150, 150))  # entirely outside
    report = check_dataset(voc)
    clipped, rejected = sorted(_only(report, "box_outside_image"), key=lambda p: p.severity, reverse=True)
    assert clipped.severity == "warning" and clipped.action == "box clipped" and clipped.path.endswith("0001.xml")
    assert rejected.severity == "error" and rejected.action == "box rejected" and rejected.path.endswith("0002.xml")


def test_zero_area_box(voc):
    _set_box(voc / "Annotations" / "train_0004.xml", (40, 30, 30, 60))  # xmax < xmin
    (p,) = _only(check_dataset(voc), "zero_area_box")
    assert p.severity == "error" and p.path.endswith("train_0004.xml")


def test_unknown_class(voc):
    xml = voc / "Annotations" / "val_0000.xml"
    xml.write_text(xml.read_text().replace("<name>", "<name>x", 1))
    report = check_dataset(voc, classes=["scratch", "spot", "inclusion", "patch"])
    (p,) = _only(report, "unknown_class")
    assert p.path == str(xml) and not report.ok


def test_missing_annotation_missing_image_and_split_entry(voc):
    (voc / "Annotations" / "train_0005.xml").unlink()
    (voc / "JPEGImages" / "train_0006.png").unlink()
    report = check_dataset(voc)
    (entry,) = _only(report, "missing_split_entry")
    assert "train_0005" in entry.message and entry.path.endswith("train.txt")
    (img,) = _only(report, "missing_image")
    assert img.path.endswith("train_0006.xml")
    report_all = check_dataset(voc, splits=["all"])
    (ann,) = _only(report_all, "missing_annotation")
    assert ann.path.endswith("train_0005.png")


def test_malformed_annotations(voc, tmp_path):
    (voc / "Annotations" / "train_0007.xml").write_text("<annotation><object>")
    (p,) = _only(check_dataset(voc), "bad_annotation")
    assert p.path.endswith("train_0007.xml") and "malformed XML" in p.message
    yolo = generate_detection_dataset(tmp_path / "yolo", 3, 1, seed=0, imgsz=64, fmt="yolo")
    (yolo / "labels" / "train" / "train_0001.txt").write_text("0 0.5 0.5 0.2\nfoo 1 1 1 1\n")
    probs = _only(check_dataset(yolo), "bad_annotation")
    assert len(probs) == 2 and all(p.path.endswith("train_0001.txt") for p in probs)
    coco = generate_detection_dataset(tmp_path / "coco", 3, 1, seed=0, imgsz=64, fmt="coco")
    (coco / "annotations" / "val.json").write_text("{not json")
    (p,) = _only(check_dataset(coco), "bad_annotation")
    assert p.path.endswith("val.json")


def test_missing_mask_and_size_mismatch(masks):
    (masks / "masks" / "train" / "train_0002.png").unlink()
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(masks / "masks" / "val" / "val_0001.png")
    report = check_dataset(masks)
    (missing,) = _only(report, "missing_mask")
    assert missing.path.endswith("train_0002.png") and "images" in missing.path
    (mismatch,) = _only(report, "mask_size_mismatch")
    assert mismatch.path.endswith("masks/val/val_0001.png") and "12x10" in mismatch.message
    assert _only(check_dataset(masks, decode=False), "mask_size_mismatch")  # header check without decoding


def test_detect_format(voc, masks, shared_data):
    assert detect_format(voc) == "voc" and detect_format(masks) == "masks"
    expected = {"neu-det": "voc", "deeppcb": "deeppcb", "deepcrack": "deepcrack", "crackforest": "crackforest"}
    for name, fmt in expected.items():
        assert detect_format(shared_data / name) == fmt


def test_shared_dataset_counts(shared_data):
    neu = check_dataset(shared_data / "neu-det", decode=False)
    assert neu.ok and neu.total["images"] == 1800 and neu.total["boxes"] == 4189 and len(neu.classes) == 6
    assert (neu.splits["trainval"]["images"], neu.splits["trainval"]["boxes"]) == (1440, 3386)
    assert (neu.splits["test"]["images"], neu.splits["test"]["boxes"]) == (360, 803)
    pcb = check_dataset(shared_data / "deeppcb", decode=False)
    assert pcb.ok and pcb.total["images"] == 753
    assert (pcb.splits["trainval"]["images"], pcb.splits["trainval"]["boxes"]) == (501, 3433)
    assert (pcb.splits["test"]["images"], pcb.splits["test"]["boxes"]) == (252, 1590)
    crack = check_dataset(shared_data / "deepcrack", decode=False)
    assert crack.ok and crack.total["images"] == 537
    assert crack.splits["train"]["images"] == 300 and crack.splits["test"]["images"] == 237
    cfd = check_dataset(shared_data / "crackforest", decode=False)
    assert cfd.ok and cfd.total["images"] == 118 and cfd.sizes == {"480x320": 118}
    assert len([p for p in cfd.warnings if p.kind == "missing_annotation"]) == 37
