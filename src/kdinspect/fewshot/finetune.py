"""Stage II of incremental few-shot detection: widen a trained base detector and fine-tune it on a few shots.

One fine-tuning run = head surgery on the base checkpoint (old rows kept, new rows random) -> a student with the
method's classifier and freeze policy -> optional DKAN distillation from the frozen widened base model -> an
iteration-based SGD schedule (MMDetection ``IterBasedRunner`` style) -> evaluation of the chosen checkpoint with VOC07
AP50 on base / novel / all classes plus COCO mAP.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdinspect.config import RunConfig, dump_config
from kdinspect.engine.callbacks import CheckpointSaver, CSVLogger, ProgressBar
from kdinspect.engine.checkpoint import load_model
from kdinspect.engine.optim import LRSchedule, build_optimizer, capped_warmup
from kdinspect.engine.trainer import Callback, Trainer
from kdinspect.evaluation.detection import evaluate_detections
from kdinspect.evaluation.runner import collect_detections
from kdinspect.evaluation.voc import voc_ap_groups
from kdinspect.tasks.base import Task
from kdinspect.tasks.detection import DetectionTask
from kdinspect.tasks.incremental import build_incremental_pair
from kdinspect.utils.env import environment_info
from kdinspect.utils.io import write_json
from kdinspect.utils.seed import configure_threads, seed_everything

__all__ = ["METHODS", "SELECTIONS", "FinetuneResult", "MethodSpec", "evaluate_incremental", "finetune"]

logger = logging.getLogger(__name__)

SELECTIONS = ("last", "best")


@dataclass(frozen=True)
class MethodSpec:
    """How the student of a stage-II method is built and trained.

    Attributes:
        freeze: freeze policy (``kdinspect.tasks.incremental.FREEZE_POLICIES`` key).
        cosine_scale: scale of the student's cosine classifier (0 = linear classifier).
        distill: distil from the frozen widened base model with DKAN's FKA + LKA.
        description: one line for reports.
    """

    freeze: str
    cosine_scale: float
    distill: bool
    description: str


METHODS: dict[str, MethodSpec] = {
    "dkan": MethodSpec("dkan", 20.0, True, "DKAN: cosine head, frozen backbone, FKA (CWD on P2-P5) + LKA (base KL)"),
    "tfa": MethodSpec("tfa", 20.0, False, "TFA w/ cos: only the cosine classifier and box regressor train"),
    "ft": MethodSpec("dkan", 20.0, False, "DKAN's student without distillation (ablation of FKA + LKA)"),
}


@dataclass
class FinetuneResult:
    """Outcome of one fine-tuning run."""

    run_dir: Path
    checkpoint: Path
    metrics: dict[str, float] = field(default_factory=dict)
    train_s: float = 0.0
    eval_s: float = 0.0


def evaluate_incremental(
    task: Task, loader: Any, num_base: int, device: str = "cpu", out_dir: str | Path | None = None
) -> dict[str, float]:
    """VOC07 11-point AP50 on base / novel / all classes (``ap_base``, ``ap_novel``, ``ap_all`` = ``main``), per-class
    AP50 and COCO mAP (``coco_mAP``, ``coco_mAP50``) from one prediction pass.

    Args:
        task: detection task whose classes are base first, then novel.
        loader: evaluation loader.
        num_base: number of base classes (the first ``num_base`` of ``task.classes``).
        out_dir: where the COCO evaluator writes its report (PR curves, confusion matrix); None = nowhere.
    """
    classes = list(task.classes)
    preds, gts, skipped = collect_detections(task, loader, device)
    coco = evaluate_detections(preds, gts, classes, out_dir)
    groups = {"base": classes[:num_base], "novel": classes[num_base:]} if num_base < len(classes) else {}
    voc = voc_ap_groups(preds, [g.boxes for g in gts], [g.labels for g in gts], classes, groups)
    metrics = {
        "ap_base": voc.get("AP50_base", voc["AP50_all"]),
        "ap_novel": voc.get("AP50_novel", float("nan")),
        "ap_all": voc["AP50_all"],
        "coco_mAP": coco["mAP"],
        "coco_mAP50": coco["mAP50"],
        "skipped_files": float(len(skipped)),
    }
    metrics |= {k: v for k, v in voc.items() if k.startswith("AP50/")}
    metrics["main"] = metrics["ap_all"]
    if out_dir is not None:
        write_json(Path(out_dir) / "fewshot_metrics.json", metrics)
    return metrics


class _FinalCheckpoints(CheckpointSaver):
    """``last.safetensors`` only at the end (few-shot epochs are a handful of iterations); ``best`` on improvement."""

    def on_epoch_end(self, trainer: Trainer) -> None:
        return


class _EvalEvery(Callback):
    """Evaluate every ``interval`` iterations (paper protocol: every 2,000 of 8,000, best kept)."""

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.best_metrics: dict[str, float] = {}

    def on_step_end(self, trainer: Trainer, losses: dict[str, float]) -> None:
        if self.interval > 0 and trainer.state.global_step % self.interval == 0:
            if trainer.max_iters and trainer.state.global_step >= trainer.max_iters:
                return  # the trainer's own final evaluation covers the last step
            trainer.run_eval()

    def on_eval_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        if improved:
            self.best_metrics = dict(metrics) | {"step": float(trainer.state.global_step)}


def student_config(cfg: RunConfig, base_cfg: RunConfig, method: str) -> RunConfig:
    """The run config stored with the student: the base model's architecture with the method's classifier and all
    classes, the fine-tuning data and schedule, no teacher (so ``kdinspect eval/predict/export`` rebuild it)."""
    out = copy.deepcopy(cfg)
    out.task = "detection"
    out.model = copy.deepcopy(base_cfg.model)
    out.model.num_classes = 0
    out.model.params = dict(out.model.params) | {"cosine_scale": METHODS[method].cosine_scale}
    out.distill.teacher = ""
    out.distill.method = ""
    return out


def _check_classes(base_classes: list[str], classes: list[str], base_checkpoint: str | Path) -> None:
    if classes[: len(base_classes)] != base_classes or len(classes) <= len(base_classes):
        raise ValueError(
            f"data.classes {classes} must start with the base checkpoint's classes {base_classes} "
            f"({base_checkpoint}) and add at least one new class"
        )


def finetune(
    cfg: RunConfig,
    base_checkpoint: str | Path,
    method: str = "dkan",
    init_seed: int = 0,
    select: str = "last",
    eval_every: int = 0,
    progress: bool = False,
    evaluate: bool = True,
) -> FinetuneResult:
    """Fine-tune a widened base detector on the few-shot set of ``cfg.data.train``; evaluate on ``cfg.data.val``.

    Args:
        cfg: run config of the fine-tuning: ``data`` (train = few-shot set, val = evaluation set, ``classes`` = the
            base checkpoint's classes followed by the new ones), ``train`` (iteration-based: ``max_iters`` is the
            length and ``milestones`` count *iterations*), ``distill.params`` (DKAN options such as ``split``,
            ``lka_mode``, ``fka_tau``). ``model`` is taken from the base checkpoint.
        base_checkpoint: stage-I checkpoint (linear classifier, base classes only).
        method: ``METHODS`` key (``dkan``, ``tfa``, ``ft``).
        init_seed: seed of the random novel rows of the head surgery.
        select: ``last`` (default: the final weights) or ``best`` (paper protocol: the best ``ap_all`` on
            ``data.val`` among evaluations every ``eval_every`` iterations; this selects on the evaluation set).
        eval_every: evaluation interval in iterations for ``select="best"``.
        progress: show a progress bar.
        evaluate: evaluate the last checkpoint on ``data.val`` (``select="last"`` only; the metrics stay empty
            otherwise).

    Raises:
        KeyError: unknown method.
        ValueError: bad selection, schedule or class list.
        FileExistsError: the run folder already holds a finished run.
    """
    if method not in METHODS:
        raise KeyError(f"unknown few-shot method {method!r}; valid: {sorted(METHODS)}")
    if select not in SELECTIONS:
        raise ValueError(f"select {select!r} not in {list(SELECTIONS)}")
    if cfg.train.max_iters <= 0:
        raise ValueError("fine-tuning is iteration-based: set train.max_iters > 0")
    if select == "best" and eval_every <= 0:
        raise ValueError("select='best' (paper protocol) needs eval_every > 0 iterations")
    spec = METHODS[method]
    t0 = time.perf_counter()
    configure_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)
    base = load_model(base_checkpoint)
    classes = list(cfg.data.classes)
    _check_classes(list(base.classes), classes, base_checkpoint)
    num_base = len(base.classes)
    teacher, student = build_incremental_pair(
        base.model, len(classes) - num_base, spec.cosine_scale, spec.freeze, seed=init_seed
    )
    scfg = student_config(cfg, base.cfg, method)
    run_dir = _prepare(
        scfg,
        {
            "method": method,
            "base_checkpoint": str(base_checkpoint),
            "init_seed": init_seed,
            "select": select,
            "eval_every": eval_every,
            "num_base": num_base,
            "distill_params": dict(cfg.distill.params) if spec.distill else {},
        },
    )
    task: Task = DetectionTask(student, classes)
    if spec.distill:
        from kdinspect.distill.dkan import build_dkan

        task = build_dkan(task, teacher, num_base, **cfg.distill.params)
    trainer, val_loader, tracker = _build_trainer(scfg, task, run_dir, num_base, select, eval_every, progress)
    trainer.fit()
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    if select == "best":
        metrics = tracker.best_metrics
        chosen = run_dir / "best.safetensors"
    else:
        metrics = (
            evaluate_incremental(task, val_loader, num_base, scfg.train.device, run_dir / "eval") if evaluate else {}
        )
        chosen = run_dir / "last.safetensors"
    eval_s = time.perf_counter() - t1
    write_json(
        run_dir / "results.json",
        {
            "metrics": metrics,
            "checkpoint": chosen.name,
            "train_s": train_s,
            "eval_s": eval_s,
            "state": trainer.state.to_dict(),
        },
    )
    logger.info(
        "%s: AP_B %.4f AP_N %.4f AP_All %.4f (%s)",
        run_dir,
        metrics.get("ap_base", float("nan")),
        metrics.get("ap_novel", float("nan")),
        metrics.get("ap_all", float("nan")),
        chosen.name,
    )
    return FinetuneResult(run_dir, chosen, metrics, train_s, eval_s)


def _prepare(cfg: RunConfig, info: dict[str, Any]) -> Path:
    run_dir = cfg.run_dir
    if (run_dir / "results.json").exists():
        raise FileExistsError(f"{run_dir} already holds a finished fine-tuning run; choose another train.name")
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run_dir / "config.yaml")
    write_json(run_dir / "fewshot.json", info)
    write_json(run_dir / "env.json", environment_info())
    return run_dir


def _build_trainer(
    cfg: RunConfig, task: Task, run_dir: Path, num_base: int, select: str, eval_every: int, progress: bool
) -> tuple[Trainer, Any, _EvalEvery]:
    from kdinspect.api import build_loader
    from kdinspect.data import build_dataset

    t = cfg.train
    train_ds = build_dataset(cfg.data, "train", "detection", train=True, seed=t.seed, run_dir=run_dir)
    val_ds = build_dataset(cfg.data, "val", "detection", train=False, seed=t.seed, run_dir=run_dir)
    logger.info("few-shot set: %d images, %d boxes", len(train_ds), sum(len(r.labels) for r in train_ds.index.records))
    train_loader = build_loader(train_ds, t.batch_size, True, t.seed, cfg.data.workers)
    val_loader = build_loader(val_ds, t.batch_size, False, t.seed, cfg.data.workers)
    optimizer = build_optimizer(task.trainable(), t)
    ipe = len(train_loader.batch_sampler)  # type: ignore[arg-type]
    # iteration-based schedule: milestones are iterations (iters_per_epoch=1 in the LR schedule)
    warmup = capped_warmup(t.warmup_iters, t.max_iters, t.warmup_max_frac)
    schedule = LRSchedule(optimizer, t.scheduler, 1, t.max_iters, t.milestones, t.gamma, warmup, t.warmup_ratio)
    tracker = _EvalEvery(eval_every if select == "best" else 0)
    callbacks: list[Callback] = [
        _FinalCheckpoints(run_dir, cfg, 0, keep_best=select == "best"),
        CSVLogger(run_dir, t.log_interval),
        ProgressBar(progress),
        tracker,
    ]

    def run_eval(tk: Task) -> dict[str, float]:
        return evaluate_incremental(tk, val_loader, num_base, t.device)

    trainer = Trainer(
        task,
        optimizer,
        schedule,
        train_loader,
        math.ceil(t.max_iters / max(ipe, 1)),
        evaluate=run_eval if select == "best" else None,
        eval_interval=0,
        max_iters=t.max_iters,
        callbacks=callbacks,
        device=t.device,
        grad_clip=t.grad_clip,
    )
    return trainer, val_loader, tracker
