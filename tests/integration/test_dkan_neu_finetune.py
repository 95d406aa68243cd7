"""A short real DKAN run on NEU-DET: stage I on a few base-class images, then stage II (FKA + LKA) on a 5-shot set."""

import json
from pathlib import Path

import pytest
import torch

from kdinspect.engine.checkpoint import load_model
from kdinspect.fewshot import Job, run_job
from kdinspect.fewshot.protocol import job_dir, load_protocol

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = {
    "backbone": "mobilenet_v3_small",
    "pretrained": False,
    "fpn_channels": 32,
    "representation_size": 64,
    "box_batch_size_per_image": 64,
    "rpn_post_nms_top_n": [200, 100],
    "roi_sampling_ratio": 2,
}


def test_base_then_dkan_finetune_on_neu(shared_data, tmp_path):
    overrides = [
        f"protocol.root={shared_data / 'neu-det'}",
        f"protocol.out_dir={tmp_path}",
        "base.data.imgsz=128",
        "base.data.limit=8",
        "base.train.max_iters=3",
        "base.train.epochs=1",
        "finetune.data.imgsz=128",
        "finetune.data.limit=8",
        "finetune.train.max_iters=4",
        "finetune.train.milestones=[3]",
    ] + [f"base.model.params.{k}={v}".replace("'", "") for k, v in TINY_MODEL.items()]
    pf = load_protocol(REPO / "configs" / "dkan" / "neu_cpu.yaml", overrides)
    base_row = run_job(pf, Job("base", 1))
    assert base_row["method"] == "base" and 0.0 <= base_row["ap_base"] <= 1.0

    base = load_model(job_dir(pf, Job("base", 1)) / "last.safetensors").model
    row = run_job(pf, Job("dkan", 1, 5, 1))
    for key in ("ap_base", "ap_novel", "ap_all", "coco_map"):
        assert 0.0 <= row[key] <= 1.0, key
    run = job_dir(pf, Job("dkan", 1, 5, 1))
    student = load_model(run / "last.safetensors")
    assert student.classes[:3] == ["crazing", "inclusion", "patches"] and len(student.classes) == 6
    assert student.model.roi_heads.box_predictor.scale == 20.0
    sd, bd = student.model.state_dict(), base.state_dict()
    assert all(torch.equal(sd[k], bd[k]) for k in bd if k.startswith("backbone."))  # frozen backbone
    assert any(not torch.equal(sd[k], bd[k]) for k in bd if k.startswith("neck."))  # the neck trained
    steps = (run / "steps.csv").read_text()
    assert "distill.fka_p2" in steps and "distill.lka" in steps
    assert run_job(pf, Job("dkan", 1, 5, 1)) == row  # finished jobs are not run again

    # the user-facing workflow on the same base detector: a few labelled images of new classes -> widened detector
    from kdinspect.fewshot.add_classes import add_classes

    new_list, eval_list = tmp_path / "new.txt", tmp_path / "eval.txt"
    new_list.write_text("pitted_surface_10\nscratches_10\ncrazing_10\n")
    eval_list.write_text("pitted_surface_1\nscratches_1\ncrazing_1\n")
    neu = shared_data / "neu-det"
    res = add_classes(
        job_dir(pf, Job("base", 1)) / "last.safetensors",
        neu,
        "voc",
        str(new_list),
        None,
        neu,
        None,
        str(eval_list),
        tmp_path,
        "add",
        iters=2,
        batch_size=2,
        threads=1,
        progress=False,
    )
    assert res.new_classes == ["pitted_surface", "scratches"]
    assert res.classes == ["crazing", "inclusion", "patches", "pitted_surface", "scratches"]
    assert res.before["ap_new"] == 0.0 and {"ap_old", "ap_new", "ap_all"} <= set(res.after)
    # every class of the widened detector is scored, before and after (values, not only keys)
    per_class = {f"AP50/{c}" for c in res.classes}
    assert per_class <= set(res.before) and per_class <= set(res.after)
    assert all(0.0 <= res.after[k] <= 1.0 for k in (*per_class, "ap_old", "ap_new", "ap_all"))
    assert all(res.before[f"AP50/{c}"] == 0.0 for c in res.new_classes)  # the old detector cannot know them
    widened = load_model(res.checkpoint)
    assert widened.classes == res.classes
    head = widened.model.roi_heads.box_predictor
    assert (head.cls_score.out_features, head.bbox_pred.out_features) == (6, 24) and head.scale == 20.0
    wd = widened.model.state_dict()
    assert all(torch.equal(wd[k], bd[k]) for k in bd if k.startswith("backbone."))  # the backbone stays frozen
    report = json.loads((res.run_dir / "add_classes.json").read_text())
    assert (report["classes"], report["new_classes"]) == (res.classes, res.new_classes)
    assert report["before"] == pytest.approx(res.before) and report["after"] == pytest.approx(res.after)
