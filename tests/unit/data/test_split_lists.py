"""Split lists that name an image twice: each image is read once, and every repeated entry is a warning."""

from __future__ import annotations

import numpy as np
from PIL import Image
from tests.helpers.mini_data import neu_mini

from kdinspect.config import DataConfig
from kdinspect.data import build_dataset, load_kshot, read_deeppcb, read_masks, read_voc
from kdinspect.data.check import check_dataset


def _dups(index):
    return [p for p in index.problems if p.kind == "duplicate_split_entry"]


def test_voc_duplicate_entries_are_read_once_and_reported(shared_data, tmp_path):
    root = neu_mini(shared_data, tmp_path / "neu")
    lst = root / "splits" / "train.txt"
    lst.write_text("crazing_1\ninclusion_1\ncrazing_1.jpg\npatches_1\ninclusion_1\n")
    index = read_voc(root, "train")
    assert [r.image_id for r in index.records] == ["crazing_1", "inclusion_1", "patches_1"]
    dups = _dups(index)
    assert len(dups) == 2 and all(p.path == str(lst) and p.severity == "warning" for p in dups)
    assert "'crazing_1.jpg'" in dups[0].message and "'crazing_1'" in dups[0].message
    cfg = DataConfig(format="voc", root=str(root), train="train", val="val")
    assert len(build_dataset(cfg, "train", "detection", train=True)) == 3
    report = check_dataset(root, splits=["train"], decode=False)
    assert report.ok and len([p for p in report.problems if p.kind == "duplicate_split_entry"]) == 2
    assert report.splits["train"]["images"] == 3


def test_mask_list_duplicates(tmp_path):
    for sub in ("images", "masks", "splits"):
        (tmp_path / sub).mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8)).save(tmp_path / "images" / f"m{i}.png")
        Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path / "masks" / f"m{i}.png")
    (tmp_path / "splits" / "train.txt").write_text("m0\nm1\nimages/m0.png masks/m0.png\nm2\n")
    index = read_masks(tmp_path, "train")
    assert [r.image_id for r in index.records] == ["m0", "m1", "m2"]
    dups = _dups(index)
    assert len(dups) == 1 and dups[0].path.endswith("train.txt") and "m0" in dups[0].message


def test_deeppcb_list_duplicates(tmp_path):
    pcb = tmp_path / "PCBData"
    (pcb / "g1" / "1").mkdir(parents=True)
    (pcb / "g1" / "1_not").mkdir()
    for stem in ("0001", "0002"):
        for suffix in ("test", "temp"):
            Image.new("L", (64, 64)).save(pcb / "g1" / "1" / f"{stem}_{suffix}.jpg")
        (pcb / "g1" / "1_not" / f"{stem}.txt").write_text("1 2 10 12 1\n")
    line = "g1/1/0001.jpg g1/1_not/0001.txt"
    (pcb / "test.txt").write_text(f"{line}\ng1/1/0002.jpg g1/1_not/0002.txt\n{line}\n")
    index = read_deeppcb(tmp_path, "test")
    assert [r.image_id for r in index.records] == ["0001", "0002"]
    assert len(_dups(index)) == 1 and "0001" in _dups(index)[0].message


def test_kshot_list_duplicates_are_reported(shared_data, tmp_path):
    root = neu_mini(shared_data, tmp_path / "neu")
    folder = root / "fewshot_split" / "seed1"
    folder.mkdir(parents=True)
    (folder / "box_5shot_crazing_train.txt").write_text("crazing_1.jpg\ncrazing_2.jpg\ncrazing_1.jpg\n")
    (folder / "box_5shot_inclusion_train.txt").write_text("inclusion_1.jpg\n")
    index = load_kshot(root, 1, 5, ["crazing", "inclusion"], cap="first")
    assert index.classes == ["crazing", "inclusion"]
    assert sorted(r.image_id for r in index.records) == ["crazing_1", "crazing_2", "inclusion_1"]
    dups = _dups(index)
    assert len(dups) == 1 and dups[0].path.endswith("box_5shot_crazing_train.txt") and "crazing_1" in dups[0].message
