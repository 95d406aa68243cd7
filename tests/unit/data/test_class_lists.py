"""One class list per dataset: every split, the checkpoint and ``data check`` use the same names in the same order."""

from __future__ import annotations

import logging
import re
from collections import Counter

import pytest
from tests.helpers.mini_data import NEU_MINI_CLASSES, neu_mini, rename_class, xml_names

from kdinspect.config import DataConfig, RunConfig
from kdinspect.data import build_dataset, build_datasets, read_neu_fewshot, read_split
from kdinspect.data.check import check_dataset


@pytest.fixture
def neu(shared_data, tmp_path):
    """Mini NEU-DET (3 images per class) with one misspelt class in one training XML (crazing_1: 'crazinng')."""
    root = neu_mini(shared_data, tmp_path / "neu")
    rename_class(root / "ANNOTATIONS" / "crazing_1.xml", "crazing", "crazinng")
    return root


def _cfg(root, classes=()) -> DataConfig:
    return DataConfig(format="voc", root=str(root), train="train", val="val", classes=list(classes))


def _names(ds_or_index, rec) -> list[str]:
    return [ds_or_index.classes[int(lab)] for lab in rec.labels]


def test_misspelt_train_class_does_not_shift_val_labels(neu):
    train = build_dataset(_cfg(neu), "train", "detection", train=False)
    val = build_dataset(_cfg(neu), "val", "detection", train=False)
    assert train.classes == val.classes == sorted([*NEU_MINI_CLASSES, "crazinng"])
    for ds in (train, val):
        assert ds.records
        for rec in ds.records:
            assert _names(ds, rec) == xml_names(neu / "ANNOTATIONS" / f"{rec.image_id}.xml")


def test_class_seen_in_val_but_not_in_train_is_reported(shared_data, tmp_path, caplog):
    root = neu_mini(shared_data, tmp_path / "neu")
    train_ids = [f"{c}_{i}" for c in NEU_MINI_CLASSES if c != "scratches" for i in (1, 2)]
    (root / "splits" / "train.txt").write_text("\n".join(train_ids) + "\n")
    with caplog.at_level(logging.WARNING, logger="kdinspect"):
        train = build_dataset(_cfg(root), "train", "detection", train=True)
        val = build_dataset(_cfg(root), "val", "detection", train=False)
    assert train.classes == val.classes == NEU_MINI_CLASSES
    assert re.search(r"'scratches'.*val.*none in the train split", caplog.text), caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kdinspect"):
        build_datasets(_cfg(root, NEU_MINI_CLASSES), "detection")  # also with data.classes set
    assert re.search(r"'scratches'.*val.*none in the train split", caplog.text), caplog.text
    rec = next(r for r in val.records if r.image_id == "scratches_3")
    assert set(_names(val, rec)) == {"scratches"}


def test_config_classes_reject_unknown_name_naming_the_file(neu, caplog):
    with caplog.at_level(logging.WARNING, logger="kdinspect"):
        index = read_split(_cfg(neu, NEU_MINI_CLASSES), "train")
    assert index.classes == NEU_MINI_CLASSES
    bad = [p for p in index.problems if p.kind == "unknown_class"]
    assert len(bad) == 1 and bad[0].path.endswith("crazing_1.xml") and "'crazinng'" in bad[0].message
    assert bad[0].severity == "error" and bad[0].action == "box rejected"
    assert "crazinng" in caplog.text
    rec = next(r for r in index.records if r.image_id == "crazing_1")
    assert len(rec.labels) == 0  # rejected, not relabelled
    for rec in index.records:
        if rec.image_id != "crazing_1":
            assert _names(index, rec) == xml_names(neu / "ANNOTATIONS" / f"{rec.image_id}.xml")


def test_evaluate_maps_data_onto_checkpoint_classes(shared_data, tmp_path, monkeypatch, caplog):
    import torch

    import kdinspect.api as api
    from kdinspect.engine.checkpoint import LoadedModel

    root = neu_mini(shared_data, tmp_path / "neu")
    model_classes = ["patches", "inclusion", "crazing", "rolled-in_scale", "pitted_surface"]  # no 'scratches'
    cfg = RunConfig()
    cfg.data = _cfg(root)  # no data.classes: the checkpoint's list is the only truth
    loaded = LoadedModel(torch.nn.Identity(), cfg, model_classes, "detection", tmp_path / "m.safetensors", {})
    monkeypatch.setattr(api, "load_model", lambda *a, **k: loaded)
    seen = {}

    def fake_evaluate_task(task, loader, out_dir=None, device="cpu", mask_thr=None):
        seen["task"], seen["ds"] = task, loader.dataset
        return {}

    monkeypatch.setattr(api, "evaluate_task", fake_evaluate_task)
    with caplog.at_level(logging.WARNING, logger="kdinspect"):
        api.evaluate(tmp_path / "m.safetensors")
    ds = seen["ds"]
    assert ds.classes == seen["task"].classes == model_classes
    for rec in ds.records:
        want = [n for n in xml_names(root / "ANNOTATIONS" / f"{rec.image_id}.xml") if n != "scratches"]
        assert _names(ds, rec) == want
    assert re.search(r"'scratches'.*unknown to the model", caplog.text), caplog.text
    unknown = [p for p in ds.index.problems if p.kind == "unknown_class"]
    assert unknown and all("scratches" in p.message for p in unknown)


def test_check_flags_misspelt_class_and_counts_every_split_right(neu):
    report = check_dataset(neu, splits=["train", "val"], decode=False)
    assert report.classes == sorted([*NEU_MINI_CLASSES, "crazinng"])
    odd = [p for p in report.problems if p.kind == "unexpected_class"]
    assert len(odd) == 1 and "'crazinng'" in odd[0].message and odd[0].path.endswith("crazing_1.xml")
    assert odd[0].severity == "warning" and "only in the train split" in odd[0].message
    assert report.ok  # a warning: the name may be intended
    for split, suffixes in (("train", ("_1", "_2")), ("val", ("_3",))):
        ids = [f"{c}{s}" for c in NEU_MINI_CLASSES for s in suffixes]
        want = Counter(n for i in ids for n in xml_names(neu / "ANNOTATIONS" / f"{i}.xml"))
        got = {c: v["boxes"] for c, v in report.splits[split]["classes"].items() if v["boxes"]}
        assert got == dict(want), split
    assert "crazinng" in report.to_text()


def test_check_flags_class_absent_from_one_split(shared_data, tmp_path):
    root = neu_mini(shared_data, tmp_path / "neu")
    val_ids = [f"{c}_3" for c in NEU_MINI_CLASSES if c != "patches"]
    (root / "splits" / "val.txt").write_text("\n".join(val_ids) + "\n")
    report = check_dataset(root, splits=["train", "val"], decode=False)
    odd = [p for p in report.problems if p.kind == "unexpected_class"]
    assert len(odd) == 1 and "'patches'" in odd[0].message and "only in the train split" in odd[0].message


def test_check_with_classes_reports_unknown_name_as_error(neu):
    report = check_dataset(neu, splits=["train", "val"], decode=False, classes=NEU_MINI_CLASSES)
    bad = [p for p in report.problems if p.kind == "unknown_class"]
    assert not report.ok and len(bad) == 1 and bad[0].path.endswith("crazing_1.xml")
    assert report.classes == NEU_MINI_CLASSES


def test_fewshot_reader_keeps_its_class_list_and_reports_unknown_names(neu):
    subset = ["patches", "crazing"]
    index = read_neu_fewshot(neu, "train", subset)
    assert index.classes == subset
    bad = [p for p in index.problems if p.kind == "unknown_class"]
    assert len(bad) == 1 and bad[0].path.endswith("crazing_1.xml")
    for rec in index.records:
        want = [n for n in xml_names(neu / "ANNOTATIONS" / f"{rec.image_id}.xml") if n in subset]
        assert _names(index, rec) == want


def test_kshot_unknown_class_is_a_clear_error(neu):
    folder = neu / "fewshot_split" / "seed1"
    folder.mkdir(parents=True)
    (folder / "box_5shot_crazinng_train.txt").write_text("crazing_1.jpg\n")
    with pytest.raises(ValueError, match=r"'crazinng'.*not NEU-DET classes"):
        read_neu_fewshot(neu, "seed1_5shot", ["crazinng"])
