"""Add new defect classes to a trained detector from a small labelled folder, without the old training set.

The workflow is DKAN's stage II applied to the user's own data: the trained detector (a ``faster_rcnn_fpn``
checkpoint with a linear classifier, e.g. from ``kdinspect train``) is widened by head surgery, a cosine-classifier
student with a frozen backbone is fine-tuned on the few new examples, and the frozen old detector keeps the old
classes alive through FKA (feature distillation on P2-P5) and LKA (KL on the old-class logits). With an evaluation
folder labelled with old and new classes, the old and new class AP are reported before and after.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdinspect.config import DataConfig, DistillConfig, RunConfig, TrainConfig

__all__ = ["AddClassesResult", "add_classes", "find_new_classes"]

logger = logging.getLogger(__name__)


@dataclass
class AddClassesResult:
    """Where the widened detector is and how old/new classes score before and after (empty without eval data)."""

    run_dir: Path
    checkpoint: Path
    classes: list[str]
    new_classes: list[str]
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)


def find_new_classes(root: str | Path, fmt: str, split: str, old_classes: list[str]) -> list[str]:
    """Class names present in a labelled folder that the old detector does not know, in the folder's order."""
    from kdinspect.data import DATASETS

    if fmt not in DATASETS:
        raise KeyError(f"unknown data format {fmt!r}; valid: {sorted(DATASETS)}")
    index = DATASETS[fmt](Path(root), split, None)
    present = {int(lab) for rec in index.records for lab in rec.labels}
    found = [c for i, c in enumerate(index.classes) if i in present]
    return [c for c in found if c not in old_classes]


def _evaluate(model: Any, classes: list[str], num_old: int, data: DataConfig, batch_size: int) -> dict[str, float]:
    from kdinspect.api import build_loader
    from kdinspect.data import build_dataset
    from kdinspect.fewshot.finetune import evaluate_incremental
    from kdinspect.tasks.detection import DetectionTask

    ds = build_dataset(data, "val", "detection", train=False)
    loader = build_loader(ds, batch_size, False, 0, data.workers)
    m = evaluate_incremental(DetectionTask(model, classes), loader, num_old)
    return {"ap_old": m["ap_base"], "ap_new": m["ap_novel"], "ap_all": m["ap_all"], "coco_mAP": m["coco_mAP"]} | {
        k: v for k, v in m.items() if k.startswith("AP50/")
    }


def add_classes(
    checkpoint: str | Path,
    data_root: str | Path,
    data_format: str = "voc",
    data_split: str = "all",
    new_classes: list[str] | None = None,
    eval_root: str | Path | None = None,
    eval_format: str | None = None,
    eval_split: str = "all",
    out_dir: str | Path = "runs",
    name: str = "add-classes",
    method: str = "dkan",
    iters: int = 500,
    lr: float = 0.005,
    batch_size: int = 4,
    distill_params: dict[str, Any] | None = None,
    seed: int = 0,
    threads: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> AddClassesResult:
    """Widen ``checkpoint`` with the classes labelled in ``data_root`` and fine-tune it (DKAN by default).

    Args:
        checkpoint: the trained detector (``faster_rcnn_fpn`` with a linear classifier).
        data_root: small labelled folder with the new classes (boxes of old classes there are used too).
        data_format: reader of the folder (``voc``, ``yolo``, ``coco``; see ``kdinspect info``).
        data_split: split of the folder to train on (``all`` = every VOC annotation).
        new_classes: the classes to add; default: every class in the folder the detector does not know.
        eval_root: folder labelled with old and new classes for the before/after report (optional).
        eval_format: its reader (default: ``data_format``).
        eval_split: its split.
        out_dir: parent folder of the run.
        name: run folder name.
        method: ``dkan`` (FKA + LKA), ``tfa`` (last layer only) or ``ft`` (no distillation).
        iters: fine-tuning iterations (LR x0.1 for the last 10 %).
        lr: SGD learning rate.
        batch_size: images per iteration.
        distill_params: DKAN options (``fka_tau``, ``fka_weight``, ``lka_tau``, ``lka_weight``, ``lka_mode``).
        seed: training and head-surgery seed.
        threads: torch threads (0 = all cores).
        device: torch device.
        progress: progress bar.

    Raises:
        ValueError: no new class to add, or a requested class missing from the folder.
    """
    from kdinspect.engine.checkpoint import load_checkpoint
    from kdinspect.fewshot.finetune import finetune

    base = load_checkpoint(checkpoint)
    old = list(base.classes)
    found = find_new_classes(data_root, data_format, data_split, old)
    new = list(new_classes) if new_classes else found
    missing = [c for c in new if c not in found]
    if not new or missing:
        raise ValueError(
            f"{data_root}: nothing to add (classes found that the detector lacks: {found}; requested: {new_classes}; "
            f"the detector knows {old})"
        )
    classes = old + new
    base_cfg = base.config
    data = DataConfig(
        format=data_format,
        root=str(data_root),
        train=data_split,
        val=data_split,
        classes=classes,
        imgsz=base_cfg.data.imgsz,
        augment=True,
    )
    train = TrainConfig(
        max_iters=iters,
        batch_size=batch_size,
        lr=lr,
        momentum=0.9,
        weight_decay=1e-4,
        scheduler="step",
        milestones=[int(iters * 0.9)],
        warmup_iters=min(20, iters // 5),
        seed=seed,
        threads=threads,
        device=device,
        out_dir=str(out_dir),
        name=name,
    )
    cfg = RunConfig(
        task="detection",
        data=data,
        model=copy.deepcopy(base_cfg.model),
        train=train,
        distill=DistillConfig(params=dict(distill_params or {})),
    )
    eval_data = None
    if eval_root is not None:
        eval_data = DataConfig(
            format=eval_format or data_format,
            root=str(eval_root),
            train=eval_split,
            val=eval_split,
            classes=classes,
            imgsz=base_cfg.data.imgsz,
        )
    before: dict[str, float] = {}
    if eval_data is not None:
        from kdinspect.engine.checkpoint import load_model

        before = _evaluate(load_model(checkpoint, device).model, classes, len(old), eval_data, batch_size)
        logger.info("before: old-class AP50 %.4f, new-class AP50 %.4f", before["ap_old"], before["ap_new"])
    res = finetune(cfg, checkpoint, method, init_seed=seed, progress=progress, evaluate=False)
    after: dict[str, float] = {}
    if eval_data is not None:
        from kdinspect.engine.checkpoint import load_model

        after = _evaluate(load_model(res.checkpoint, device).model, classes, len(old), eval_data, batch_size)
        logger.info("after: old-class AP50 %.4f, new-class AP50 %.4f", after["ap_old"], after["ap_new"])
    result = AddClassesResult(res.run_dir, res.checkpoint, classes, new, before, after)
    from kdinspect.utils.io import write_json

    write_json(
        res.run_dir / "add_classes.json",
        {"checkpoint": str(res.checkpoint), "classes": classes, "new_classes": new, "before": before, "after": after},
    )
    return result
