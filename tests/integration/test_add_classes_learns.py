"""`add_classes` teaches a trained detector a class it has never seen, from a handful of labelled images, without
forgetting the old ones: a real base Faster R-CNN (MobileNetV2-FPN, ImageNet stem) trained on three of the four
synthetic steel-defect classes, then widened with the fourth from 16 images.

Measured (1 thread, shared 2-core CPU, about 10 min): base mAP50 0.767 on its three classes; after add_classes
(DKAN, 200 iterations) AP50 of the new class 0.0 -> 0.673 and of the old ones 0.764 -> 0.840."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdinspect.api import train
from kdinspect.config import RunConfig, apply_overrides
from kdinspect.data.synthetic import ensure_synthetic
from kdinspect.fewshot.add_classes import add_classes

BASE_CLASSES = ["scratch", "spot", "inclusion"]  # the fourth synthetic class, "patch", is added later


@pytest.mark.slow
def test_add_classes_detects_the_new_class_and_keeps_the_old(tmp_path: Path) -> None:
    root = ensure_synthetic(tmp_path / "data", "detection", n_train=96, n_val=32, seed=0, imgsz=128)
    ovr = [
        "task=detection", "data.format=voc", f"data.root={root}", "data.train=train", "data.val=val",
        f"data.classes=[{','.join(BASE_CLASSES)}]", "data.imgsz=128", "model.name=faster_rcnn_fpn",
        "model.params.backbone=mobilenet_v2", "model.params.pretrained=true", "model.params.fpn_channels=64",
        "model.params.representation_size=256", "model.params.box_batch_size_per_image=128",
        "model.params.rpn_post_nms_top_n=[300,100]", "model.params.roi_sampling_ratio=2", "train.epochs=24",
        "train.batch_size=4", "train.lr=0.01", "train.scheduler=cosine", "train.warmup_iters=50", "train.threads=1",
        "train.eval_interval=0", f"train.out_dir={tmp_path}", "train.name=base",
    ]  # fmt: skip
    base = train(apply_overrides(RunConfig(), ovr), progress=False)
    assert base.metrics["mAP50"] >= 0.6, base.metrics  # a working base detector (measured 0.767)
    shots = tmp_path / "new.txt"
    shots.write_text("".join(f"train_{i:04d}\n" for i in range(16)))  # 16 images, every class labelled in them
    res = add_classes(base.last, root, "voc", str(shots), None, root, None, "val", tmp_path, "add", iters=200,
                      batch_size=4, threads=1, progress=False)  # fmt: skip
    assert res.new_classes == ["patch"] and res.classes == [*BASE_CLASSES, "patch"]
    assert res.before["ap_new"] == 0.0
    assert res.after["ap_new"] >= 0.4, res.after  # it finds the new class (measured 0.673)
    assert res.after["ap_old"] >= res.before["ap_old"] - 0.05, (res.before, res.after)  # and keeps the old ones
