"""Public Python API: the functions the CLI calls (``kdinspect.train``, ``kdinspect.evaluate``, ...)."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from kdinspect.config import RunConfig, dump_config, resolve_config, with_fields
from kdinspect.engine.callbacks import (
    CheckpointSaver,
    CSVLogger,
    CurvePlotter,
    ProgressBar,
    TensorBoardLogger,
    ValidationTable,
)
from kdinspect.engine.checkpoint import LoadedModel, load_checkpoint, load_model, optimizer_from_tensors, restore_rng
from kdinspect.engine.distributed import DistInfo, broadcast_object, cleanup, init_distributed
from kdinspect.engine.ema import ModelEMA
from kdinspect.engine.optim import LRSchedule, build_optimizer, capped_warmup
from kdinspect.engine.resume import check_resume_config, remove_stale_tmp
from kdinspect.engine.sampling import EpochBatchSampler
from kdinspect.engine.trainer import Callback, Trainer, TrainState
from kdinspect.evaluation.runner import evaluate_task
from kdinspect.tasks.build import TASKS, build_task, model_kind
from kdinspect.utils.env import environment_info, git_commit
from kdinspect.utils.io import write_json
from kdinspect.utils.logging import add_file_handler
from kdinspect.utils.seed import configure_threads, seed_everything, set_deterministic

__all__ = ["TrainResult", "build_loader", "evaluate", "train"]

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Where a training run left its files, and its final metrics (of ``best``)."""

    run_dir: Path
    last: Path
    best: Path
    metrics: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0


def build_loader(
    dataset: Dataset, batch_size: int, train: bool, seed: int = 0, workers: int = 0, dist_info: DistInfo | None = None
) -> DataLoader:
    """DataLoader with a resumable, seeded batch sampler and the kdinspect collate (own RNG: never touches torch's)."""
    from kdinspect.data import collate

    dist_info = dist_info or DistInfo()
    n = len(dataset)  # type: ignore[arg-type]
    sampler = EpochBatchSampler(
        n,
        batch_size,
        shuffle=train,
        seed=seed,
        rank=dist_info.rank if train else 0,
        world_size=dist_info.world_size if train else 1,
        drop_last=train and n >= 2 * batch_size,
    )
    gen = torch.Generator()
    gen.manual_seed(seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers, generator=gen)


# what a training run writes in its folder (removed by --exist-ok before a fresh run in the same folder)
_RUN_FILES = (
    "last.safetensors",
    "best.safetensors",
    "metrics.csv",
    "steps.csv",
    "results.json",
    "resume_changes.json",
    "eval",
    "tb",
    "loss.png",
    "metrics.png",
    "results.png",
    "train_batch.png",
)


def free_run_name(cfg: RunConfig) -> str:
    """The run folder name this run gets: ``train.name``, or, when that folder already holds a run (a checkpoint)
    and neither ``train.resume`` nor ``train.exist_ok`` is set, the first free ``name-2``, ``name-3``, ..."""
    t = cfg.train
    if t.resume or t.exist_ok or not (cfg.run_dir / "last.safetensors").exists():
        return t.name
    k = 2
    while (Path(t.out_dir) / f"{t.name}-{k}").exists():
        k += 1
    return f"{t.name}-{k}"


def _prepare_run_dir(cfg: RunConfig, dist_info: DistInfo, allow_change: bool = False) -> Path:
    run_dir = cfg.run_dir
    last = run_dir / "last.safetensors"
    if last.exists() and cfg.train.exist_ok and not cfg.train.resume and dist_info.is_main:
        old = [run_dir / f for f in _RUN_FILES if (run_dir / f).exists()]
        names = ", ".join(p.name for p in old)
        logger.warning("--exist-ok: starting afresh in %s (removing the previous run's %s)", run_dir, names)
        for path in old:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    # before config.yaml is rewritten: a refused resume leaves the run folder as it was
    if last.exists() and cfg.train.resume:
        check_resume_config(run_dir, cfg, allow_change, record=dist_info.is_main)
    if dist_info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, run_dir / "config.yaml")
        info = environment_info() | {
            "git_commit": git_commit(Path(__file__).parent),
            "world_size": dist_info.world_size,
        }
        write_json(run_dir / "env.json", info)
    return run_dir


def _resume(trainer: Trainer, path: Path) -> None:
    ckpt = load_checkpoint(path)
    if ckpt.classes and list(ckpt.classes) != list(trainer.task.classes):
        raise ValueError(
            f"{path} was trained on the classes {ckpt.classes}, the data now gives {list(trainer.task.classes)}; "
            "resuming would shift the labels: set data.classes to the checkpoint's list or start a new run"
        )
    trainer.task.deployable().load_state_dict(ckpt.model)
    if trainer.ema is not None:
        if not ckpt.ema:
            raise ValueError(f"{path} holds no EMA weights (ema.*) but train.ema is on; start a new run to use EMA")
        trainer.ema.load(ckpt.ema, ckpt.ema_updates)
    if "optimizer" in ckpt.state:
        trainer.optimizer.load_state_dict(optimizer_from_tensors(ckpt.optim, ckpt.state["optimizer"]))
    trainer.schedule.load_state_dict(ckpt.state.get("scheduler", {}))
    trainer.state = TrainState.from_dict(ckpt.state.get("trainer", {}))
    trainer.last_metrics = dict(ckpt.state.get("trainer", {}).get("metrics", {}))
    restore_rng(ckpt.rng, ckpt.state.get("rng", {}))
    logger.info(
        "resumed %s at epoch %d, iteration %d (step %d)",
        path,
        trainer.state.epoch + 1,
        trainer.state.iter_in_epoch,
        trainer.state.global_step,
    )


def _datasets(cfg: RunConfig, kind: str, run_dir: Path) -> tuple[Any, Any]:
    from kdinspect.data import build_datasets

    # one class list for both splits (data.classes, else their union); it is the one stored in the checkpoint
    return build_datasets(cfg.data, kind, seed=cfg.train.seed, run_dir=run_dir, epochs=cfg.train.epochs)


def default_callbacks(cfg: RunConfig, run_dir: Path, progress: bool = True) -> list[Callback]:
    """The standard callback list (checkpoints, CSV/TensorBoard logs, curves, progress bar)."""
    return [
        CheckpointSaver(run_dir, cfg, cfg.train.checkpoint_interval, cfg.train.keep_best),
        CSVLogger(run_dir, cfg.train.log_interval),
        TensorBoardLogger(run_dir),
        CurvePlotter(run_dir),
        ValidationTable(),
        ProgressBar(progress),
    ]


def train(
    cfg: RunConfig | str | Path,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    *,
    allow_change: bool = False,
    overrides: Sequence[str] = (),
    **fields: Any,
) -> TrainResult:
    """Train the model described by ``cfg`` (distilling from ``cfg.distill.teacher`` if set).

    ``cfg`` is a :class:`RunConfig` or the path of a run YAML. ``overrides`` are dotted ``key=value`` strings as on
    the command line (``["model.params.width=4"]``); keyword arguments set one field each, by its name when that is
    unique (``epochs=3``, ``lr=0.005``, ``teacher="runs/t/best.safetensors"``) or as ``section__field`` when it is not
    (``train__name="my_run"``, ``data__root="/data/cracks"``)::

        kdinspect.train("configs/demo/seg_unet.yaml", epochs=3, train__name="try1")

    Writes the run folder ``cfg.train.out_dir/cfg.train.name`` (config, checkpoints, CSV logs, curves, final
    evaluation of the best checkpoint under ``eval/``); when that folder already holds a run, the next free
    ``name-2``, ``name-3``, ... unless ``train.resume`` or ``train.exist_ok``. Under ``torchrun`` it trains with
    DDP. With ``cfg.train.resume`` it continues from ``last.safetensors``, bit-exactly in deterministic mode;
    settings that differ from the checkpoint's are refused (:class:`~kdinspect.engine.resume.ResumeConfigError`)
    unless ``allow_change``, which records them in ``resume_changes.json``. Stale temporary files of a killed write
    are removed on resume.
    """
    t0 = time.perf_counter()
    cfg = resolve_config(cfg, list(overrides), **fields)
    if cfg.data.root and not cfg.data.format.startswith("synthetic") and not Path(cfg.data.root).exists():
        raise FileNotFoundError(f"data.root {cfg.data.root} does not exist")
    dist_info = init_distributed(cfg.train.device)
    set_deterministic(cfg.train.deterministic)
    threads = configure_threads(cfg.train.threads)
    name = broadcast_object(free_run_name(cfg) if dist_info.is_main else None)  # every process writes one folder
    if name != cfg.train.name:
        new_dir = Path(cfg.train.out_dir) / name
        logger.info(
            "%s holds a run: this one goes to %s (--resume continues it, --exist-ok reuses it)", cfg.run_dir, new_dir
        )
        cfg = with_fields(cfg, train__name=name)
    created = not cfg.run_dir.exists()
    run_dir = _prepare_run_dir(cfg, dist_info, allow_change)
    handler = add_file_handler(run_dir / "train.log") if dist_info.is_main else None
    if cfg.train.resume and dist_info.is_main:
        remove_stale_tmp(run_dir)
    fitting = False
    try:
        logger.info(
            "run %s: %s, threads=%d, device=%s, world=%d",
            run_dir,
            cfg.model.name,
            threads,
            cfg.train.device,
            dist_info.world_size,
        )
        seed_everything(cfg.train.seed)
        kind = model_kind(cfg)
        train_ds, val_ds = _datasets(cfg, kind, run_dir)
        classes = list(cfg.data.classes) or list(train_ds.classes)
        task = build_task(cfg, classes)
        trainer = _build_trainer(
            cfg, task, train_ds, val_ds, dist_info, [*default_callbacks(cfg, run_dir, progress), *callbacks], progress
        )
        if cfg.train.resume and (run_dir / "last.safetensors").exists():
            _resume(trainer, run_dir / "last.safetensors")
        fitting = True
        t_fit = time.perf_counter()
        trainer.fit()
        fit_s = time.perf_counter() - t_fit
        metrics: dict[str, float] = {}
        if dist_info.is_main:
            best = run_dir / "best.safetensors"
            if trainer.last_metrics and (trainer.state.bad_evals == 0 or not cfg.train.keep_best):
                # best.safetensors holds the weights of the final evaluation (fit always ends with one): reuse it
                metrics = dict(trainer.last_metrics)
            else:
                metrics = evaluate(best, out_dir=run_dir / "eval", device=cfg.train.device)
            eval_s = getattr(trainer.evaluate, "seconds", 0.0)
            st = trainer.state
            write_json(
                run_dir / "results.json",
                {
                    "metrics": {k: v for k, v in metrics.items() if k != "skipped_files"},
                    # train: distinct unreadable training files (train_reads counts every time one was met); eval:
                    # unreadable validation files in the final evaluation (named in train.log)
                    "skipped_files": {
                        "train": st.skipped_names,
                        "train_reads": st.skipped_files,
                        "eval": int(metrics.get("skipped_files", 0)),
                        "dropped_images": st.dropped_images,
                    },
                    "train_wall_s": time.perf_counter() - t0,
                    "fit_wall_s": fit_s,
                    "fit_eval_wall_s": eval_s,
                    "threads": threads,
                    "state": st.to_dict(),
                },
            )
        return TrainResult(
            run_dir, run_dir / "last.safetensors", run_dir / "best.safetensors", metrics, time.perf_counter() - t0
        )
    except BaseException:
        if created and not fitting and dist_info.is_main:  # a config or data error: leave no half-made run folder
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        if handler is not None:
            logging.getLogger("kdinspect").removeHandler(handler)
            handler.close()
        cleanup()


def _build_trainer(
    cfg: RunConfig,
    task: Any,
    train_ds: Any,
    val_ds: Any,
    dist_info: DistInfo,
    callbacks: list[Callback],
    progress: bool = False,
) -> Trainer:
    t = cfg.train
    train_loader = build_loader(train_ds, t.batch_size, True, t.seed, cfg.data.workers, dist_info)
    val_loader = build_loader(val_ds, t.batch_size, False, t.seed, cfg.data.workers)
    optimizer = build_optimizer(task.trainable(), t)
    iters = len(train_loader.batch_sampler)  # type: ignore[arg-type]
    total = t.max_iters or iters * t.epochs
    warmup = capped_warmup(t.warmup_iters, total, t.warmup_max_frac)
    if warmup < t.warmup_iters:
        logger.warning(
            "train.warmup_iters %d is more than %.0f %% of this run's %d iterations: warming up for %d "
            "(train.warmup_max_frac=0 keeps the full warm-up)",
            t.warmup_iters,
            100 * t.warmup_max_frac,
            total,
            warmup,
        )
    schedule = LRSchedule(
        optimizer, t.scheduler, iters, total, t.milestones, t.gamma, warmup, t.warmup_ratio, t.patience
    )

    eval_dir = cfg.run_dir / "eval"

    def run_eval(tk: Any) -> dict[str, float]:
        start = time.perf_counter()
        # every evaluation writes its report; after the run, eval/ holds the last one's
        out = eval_dir if dist_info.is_main else None
        metrics = evaluate_task(tk, val_loader, out_dir=out, device=t.device, progress=progress and dist_info.is_main)
        run_eval.seconds += time.perf_counter() - start  # type: ignore[attr-defined]
        return metrics

    run_eval.seconds = 0.0  # type: ignore[attr-defined]

    return Trainer(
        task,
        optimizer,
        schedule,
        train_loader,
        t.epochs,
        run_eval,
        t.eval_interval,
        t.max_iters,
        callbacks,
        t.device,
        t.grad_clip,
        t.amp,
        dist_info,
        t.early_stop,
        ModelEMA(task.deployable(), t.ema_decay, t.ema_tau) if t.ema else None,
    )


def _task_from_loaded(loaded: LoadedModel) -> Any:
    if loaded.kind not in TASKS:
        raise KeyError(f"no task for kind {loaded.kind!r}; valid: {sorted(TASKS)}")
    return TASKS[loaded.kind](loaded.model, loaded.classes)


def evaluate(
    checkpoint: str | Path,
    overrides: Sequence[str] = (),
    split: str = "val",
    out_dir: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 0,
) -> dict[str, float]:
    """Evaluate a checkpoint on the data its config names (``overrides`` such as ``data.root=...`` change it).

    Args:
        checkpoint: ``.safetensors`` checkpoint.
        overrides: dotted ``key=value`` changes to the stored config (``data.*``, or inference-time ``model.params.*``).
            The data is mapped onto the checkpoint's class list by name; boxes of a class the model does not know
            are left out and reported (``unknown_class``).
        split: which config split to evaluate (``val`` or ``train``).
        out_dir: where reports (metrics.json, PR curves, confusion matrix) go; None = no files.
        device: torch device.
        batch_size: evaluation batch size (0 = the training batch size).
    """
    from kdinspect.data import build_dataset

    loaded = load_model(checkpoint, device, overrides)
    cfg = loaded.cfg
    # labels are mapped onto the checkpoint's class list by name; boxes of a class it lacks are reported and left out
    ds = build_dataset(
        cfg.data, split, loaded.kind, train=False, seed=cfg.train.seed, run_dir=cfg.run_dir, classes=loaded.classes
    )
    loader = build_loader(ds, batch_size or cfg.train.batch_size, False, cfg.train.seed, cfg.data.workers)
    task = _task_from_loaded(loaded)
    metrics = evaluate_task(task, loader, out_dir=out_dir, device=device, mask_thr=loaded.mask_thr)
    logger.info(
        "%s on %s/%s: %s",
        Path(checkpoint).name,
        cfg.data.format,
        getattr(cfg.data, split),
        ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k in ("main", "mAP", "mAP50", "f1", "iou", "f1_thr")),
    )
    return metrics
