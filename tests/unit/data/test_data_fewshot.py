from __future__ import annotations

import numpy as np
import pytest

from kdinspect.data import read_voc
from kdinspect.data.fewshot import (
    NEU_CLASSES,
    NEU_SPLITS,
    filter_classes,
    kshot_file,
    load_kshot,
    read_neu_fewshot,
    split_classes,
)


def _box_keys(index):
    return {(r.image_id, index.classes[lab], tuple(b)) for r in index.records for b, lab in zip(r.boxes, r.labels)}


@pytest.mark.parametrize(("seed", "cap"), [(1, "random"), (7, "first")])
def test_kshot_caps_and_nesting(shared_data, seed, cap):
    root = shared_data / "neu-det"
    sets = {k: load_kshot(root, seed, k, cap=cap) for k in (5, 10, 30)}
    full = {r.image_id: r for r in read_voc(root, "all").records}
    for k, idx in sets.items():
        counts = np.bincount(np.concatenate([r.labels for r in idx.records]), minlength=6)
        assert (counts <= k).all() and (counts > 0).all()
        assert len({r.image_id for r in idx.records}) == len(idx.records)  # merged: one record per image
        for cls in NEU_CLASSES:
            listed = set((kshot_file(root, seed, k, cls)).read_text().split())
            boxes_of_cls = [r for r in idx.records if NEU_CLASSES.index(cls) in r.labels]
            assert {r.image_id for r in boxes_of_cls} <= listed  # only listed images give boxes of that class
        for r in idx.records:  # every kept box is an original box of that image with its own class
            src = full[r.image_id]
            for b, lab in zip(r.boxes, r.labels):
                assert any((b == sb).all() and lab == sl for sb, sl in zip(src.boxes, src.labels))
    for cls in NEU_CLASSES:  # the split files nest: 5-shot images are in the 10-shot list, those in the 30-shot list
        lists = [set(kshot_file(root, seed, k, cls).read_text().split()) for k in (5, 10, 30)]
        assert lists[0] <= lists[1] <= lists[2]
    if cap == "first":  # the first-K cap keeps the nesting at box level
        assert _box_keys(sets[5]) <= _box_keys(sets[10]) <= _box_keys(sets[30])


def test_kshot_cross_class_image_keeps_only_listed_class(shared_data):
    # seed1 patches lists pitted_surface_210 (also 1 pitted_surface box): only its 'patches' boxes may be kept
    idx = load_kshot(shared_data / "neu-det", 1, 30, classes=["patches"])
    rec = next(r for r in idx.records if r.image_id == "pitted_surface_210")
    assert set(rec.labels.tolist()) == {0}
    assert sum(len(r.labels) for r in idx.records) == 30


def test_kshot_split_class_order_and_random_cap(shared_data):
    classes = split_classes(1)
    assert classes[:3] == NEU_SPLITS[1][0] and classes[3:] == NEU_SPLITS[1][1]
    a = load_kshot(shared_data / "neu-det", 1, 10, classes, cap="random", cap_seed=0)
    b = load_kshot(shared_data / "neu-det", 1, 10, classes, cap="random", cap_seed=0)
    assert a.classes == classes and _box_keys(a) == _box_keys(b)
    assert (np.bincount(np.concatenate([r.labels for r in a.records]), minlength=6) <= 10).all()


def test_filter_classes_reindexes(shared_data, tmp_path):
    (tmp_path / "ids.txt").write_text("scratches_108\n")
    idx = read_voc(shared_data / "neu-det", str(tmp_path / "ids.txt"), NEU_CLASSES)
    sub = filter_classes(idx, ["inclusion"])
    assert sub.classes == ["inclusion"] and sub.records[0].labels.tolist() == [0, 0, 0]
    assert filter_classes(idx, ["crazing"], drop_empty=True).records == []
    with pytest.raises(ValueError, match="not in the dataset classes"):
        filter_classes(idx, ["dog"])


def test_neu_fewshot_reader(shared_data):
    root = shared_data / "neu-det"
    base = split_classes(2, "base")
    test = read_neu_fewshot(root, "test", base, drop_empty=["trainval"])
    assert len(test.records) == 360 and test.classes == base
    kshot = read_neu_fewshot(root, "seed2_5shot", split_classes(2))
    assert kshot.split == "seed2_5shot" and len(kshot.records) <= 30
    with pytest.raises(ValueError, match="seed1_10shot"):
        read_neu_fewshot(root, "seedX_5shot")
