from pathlib import Path

import numpy as np
import pytest

from kdinspect.data import build_dataset
from kdinspect.data.fewshot import kshot_file, split_classes
from kdinspect.fewshot import Job, aggregate, markdown_table, paper_row, protocol_jobs
from kdinspect.fewshot.protocol import ProtocolFile, base_run_config, finetune_run_config, load_protocol

REPO = Path(__file__).resolve().parents[3]
CPU_CONFIG = REPO / "configs" / "dkan" / "neu_cpu.yaml"


def test_job_ids_round_trip_and_protocol_size():
    pf = load_protocol(CPU_CONFIG)
    jobs = protocol_jobs(pf)
    assert len(jobs) == 3 + 3 * 3 * 3 * 2  # 3 base trainings + splits x K x seeds x {dkan, tfa}
    assert [j.id for j in jobs[:3]] == ["base-s1", "base-s2", "base-s3"]
    for job in jobs:
        assert Job.parse(job.id) == job
    with pytest.raises(ValueError):
        Job.parse("dkan-s1-k5")


def test_paper_protocol_config():
    pf = load_protocol(REPO / "configs" / "dkan" / "neu_paper.yaml")
    assert pf.protocol.select == "best" and pf.protocol.eval_every == 2000 and pf.protocol.seeds == list(range(1, 11))
    assert pf.finetune.train.max_iters == 8000 and pf.base.model.params["backbone"] == "resnet101"
    assert len(protocol_jobs(pf)) == 3 + 3 * 3 * 10 * 2


def test_protocol_overrides_are_checked():
    pf = load_protocol(CPU_CONFIG, ["protocol.seeds=[4]", "finetune.train.max_iters=7"])
    assert pf.protocol.seeds == [4] and pf.finetune.train.max_iters == 7
    with pytest.raises(KeyError):
        load_protocol(CPU_CONFIG, ["protocol.methods=[bogus]"])
    with pytest.raises(KeyError):
        load_protocol(CPU_CONFIG, ["protocol.nope=1"])


def test_run_configs_fill_data_per_job():
    pf = ProtocolFile()
    base = base_run_config(pf, 2)
    assert base.data.classes == split_classes(2, "base") and base.data.train == "trainval"
    ft = finetune_run_config(pf, Job("dkan", 3, 10, 4))
    assert ft.data.classes == split_classes(3, "all") and ft.data.train == "seed4_10shot" and ft.data.val == "test"
    assert ft.distill.params["split"] == 3
    assert finetune_run_config(pf, Job("tfa", 3, 10, 4)).distill.params == {}


@pytest.mark.parametrize(("split", "shots", "seed"), [(1, 5, 1), (3, 10, 2)])
def test_kshot_training_set_matches_split_files(shared_data, split, shots, seed):
    pf = load_protocol(CPU_CONFIG, [f"protocol.root={shared_data / 'neu-det'}"])
    cfg = finetune_run_config(pf, Job("dkan", split, shots, seed))
    ds = build_dataset(cfg.data, "train", "detection", train=True)
    classes = split_classes(split, "all")
    assert ds.classes == classes
    counts = np.zeros(len(classes), dtype=int)
    for rec in ds.records:
        for label in rec.labels:
            listed = kshot_file(shared_data / "neu-det", seed, shots, classes[label]).read_text().split()
            assert rec.image_id in listed  # a box of class c only comes from an image listed for c
        counts += np.bincount(rec.labels, minlength=len(classes))
    assert (counts <= shots).all() and (counts == shots).sum() >= len(classes) - 1, counts


def test_aggregate_mean_std_and_table():
    rows = [
        {"method": "dkan", "split": 1, "shots": 5, "seed": s, "ap_base": b, "ap_novel": n, "ap_all": a, "coco_map": 0.1}
        for s, b, n, a in [(1, 0.6, 0.2, 0.4), (2, 0.8, 0.4, 0.6)]
    ] + [{"method": "base", "split": 1, "ap_base": 0.9}]
    (agg,) = aggregate(rows)
    assert agg["n"] == 2 and agg["ap_all_mean"] == pytest.approx(0.5)
    assert agg["ap_all_std"] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    table = markdown_table([agg], "ap_all")
    assert "0.5000 ± 0.1414" in table and "0.5394" in table  # ours and the paper's DKAN 5-shot split 1
    assert "(ours, 2 seeds)" in table and "n=" not in table
    (short,) = aggregate([{**rows[0], "split": 2}])  # split 2 has one seed only: its cell says so
    row = next(line for line in markdown_table([agg, short], "ap_all").splitlines() if "(ours" in line)
    assert row == "| 5 | dkan (ours, 2 seeds) | 0.5000 ± 0.1414 | 0.4000 (n=1) |"
    assert paper_row("DKAN", 30, 3) == {"ap_base": 0.8344, "ap_novel": 0.3231, "ap_all": 0.5788}
    assert paper_row("DKAN", 1, 1) is None
