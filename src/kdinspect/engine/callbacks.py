"""Standard callbacks: checkpoints, CSV/TensorBoard logs, curve plots, progress bar."""

from __future__ import annotations

import csv
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kdinspect.config import RunConfig
from kdinspect.engine.checkpoint import save_checkpoint
from kdinspect.engine.trainer import Callback, Trainer

__all__ = ["CSVLogger", "CheckpointSaver", "CurvePlotter", "ProgressBar", "TensorBoardLogger", "ValidationTable"]

logger = logging.getLogger(__name__)


class CheckpointSaver(Callback):
    """Writes ``last.safetensors`` at epoch ends (and every ``interval`` iterations) and ``best.safetensors`` when the
    main validation metric improves. Only the deployable model is stored (never a distillation teacher)."""

    def __init__(self, run_dir: Path, cfg: RunConfig, interval: int = 0, keep_best: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.cfg = cfg
        self.interval = interval
        self.keep_best = keep_best

    def save(self, trainer: Trainer, name: str) -> Path:
        task, ema = trainer.task, trainer.ema
        # with train.ema: best.safetensors holds the EMA weights as its model (what is deployed); last.safetensors the
        # raw ones plus the EMA ones and their update count (what --resume needs)
        weights = ema.module if ema is not None and name != "last.safetensors" else task.deployable()
        return save_checkpoint(
            self.run_dir / name,
            weights,
            self.cfg,
            task.classes,
            task.kind,
            trainer_state=trainer.state.to_dict() | {"metrics": trainer.last_metrics},
            optimizer=trainer.optimizer,
            scheduler_state=trainer.schedule.state_dict(),
            ema_state=ema.state_tensors() if ema is not None and name == "last.safetensors" else None,
            ema_updates=ema.updates if ema is not None else 0,
        )

    def on_step_end(self, trainer: Trainer, losses: dict[str, float]) -> None:
        due = self.interval > 0 and trainer.state.global_step % self.interval == 0
        # the epoch-end save covers an epoch's last step
        if due and trainer.dist_info.is_main and trainer.state.iter_in_epoch < trainer.iters_per_epoch:
            self.save(trainer, "last.safetensors")

    def on_epoch_end(self, trainer: Trainer) -> None:
        if trainer.dist_info.is_main:
            self.save(trainer, "last.safetensors")

    def on_eval_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        if improved and self.keep_best and trainer.dist_info.is_main:
            self.save(trainer, "best.safetensors")
            logger.info("new best main = %.4f (epoch %d)", metrics.get("main", float("nan")), trainer.state.epoch + 1)

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.dist_info.is_main:
            self.save(trainer, "last.safetensors")
            if self.keep_best and not (self.run_dir / "best.safetensors").exists():
                self.save(trainer, "best.safetensors")


class _CSV:
    """Append rows to a CSV; the header is fixed by the first row written in this file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.exists() and path.stat().st_size > 0:
            with path.open() as fh:
                self.fields = next(csv.reader(fh), None)

    def write(self, row: dict[str, Any]) -> None:
        if self.fields is None:
            self.fields = list(row)
            with self.path.open("w", newline="") as fh:
                csv.writer(fh).writerow(self.fields)
        with self.path.open("a", newline="") as fh:
            csv.DictWriter(fh, self.fields, extrasaction="ignore").writerow(row)


class CSVLogger(Callback):
    """``steps.csv`` (loss terms averaged over ``interval`` steps, LR) and ``metrics.csv`` (one row per evaluation)."""

    def __init__(self, run_dir: Path, interval: int = 10) -> None:
        self.steps = _CSV(Path(run_dir) / "steps.csv")
        self.metrics = _CSV(Path(run_dir) / "metrics.csv")
        self.interval = max(interval, 1)
        self._sums: dict[str, float] = defaultdict(float)
        self._count = 0
        self._epoch_sums: dict[str, float] = defaultdict(float)
        self._epoch_count = 0
        self._t0 = time.perf_counter()

    def on_epoch_start(self, trainer: Trainer) -> None:
        self._epoch_sums.clear()
        self._epoch_count = 0

    def on_step_end(self, trainer: Trainer, losses: dict[str, float]) -> None:
        if not losses or not trainer.dist_info.is_main:
            return
        for k, v in losses.items():
            self._sums[k] += v
            self._epoch_sums[k] += v
        self._count += 1
        self._epoch_count += 1
        if trainer.state.global_step % self.interval == 0:
            self._flush(trainer)

    def _flush(self, trainer: Trainer) -> None:
        if not self._count or not trainer.dist_info.is_main:
            return
        row = {"step": trainer.state.global_step, "epoch": trainer.state.epoch, "lr": trainer.schedule.lr}
        row |= {k: v / self._count for k, v in self._sums.items()}
        row["time_s"] = round(time.perf_counter() - self._t0, 2)
        self.steps.write(row)
        self._sums.clear()
        self._count = 0

    def on_epoch_end(self, trainer: Trainer) -> None:
        self._flush(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        self._flush(trainer)

    def on_eval_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        if not trainer.dist_info.is_main:
            return
        row: dict[str, Any] = {"epoch": trainer.state.epoch + 1, "step": trainer.state.global_step}
        n = max(self._epoch_count, 1)
        row |= {f"train_{k}": v / n for k, v in self._epoch_sums.items()}
        row |= {k: v for k, v in metrics.items() if isinstance(v, int | float)}
        row["skipped_files"] = trainer.state.skipped_files
        self.metrics.write(row)


class TensorBoardLogger(Callback):
    """Mirror losses and metrics to TensorBoard when ``tensorboard`` is installed (silently absent otherwise)."""

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.writer = None
            return
        self.writer = SummaryWriter(str(Path(run_dir) / "tb"))

    def on_step_end(self, trainer: Trainer, losses: dict[str, float]) -> None:
        if self.writer is not None and trainer.dist_info.is_main:
            for k, v in losses.items():
                self.writer.add_scalar(f"train/{k}", v, trainer.state.global_step)

    def on_eval_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        if self.writer is not None and trainer.dist_info.is_main:
            for k, v in metrics.items():
                if isinstance(v, int | float):
                    self.writer.add_scalar(f"val/{k}", v, trainer.state.global_step)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()


class CurvePlotter(Callback):
    """Draw ``loss.png`` and ``metrics.png`` in the run folder from the CSV logs after each evaluation."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def _plot(self, trainer: Trainer) -> None:
        if not trainer.dist_info.is_main:
            return
        from kdinspect.evaluation.plots import plot_results_grid, plot_training_curves

        try:
            plot_training_curves(self.run_dir)
            plot_results_grid(self.run_dir)
        except Exception as err:  # plotting must never kill a training run
            logger.warning("could not draw training curves: %s", err)

    def on_fit_start(self, trainer: Trainer) -> None:
        """``train_batch.png``: the first training batch as the model will see it (augmented), with its labels drawn,
        so a label or augmentation mistake shows before hours are spent. Fresh runs only."""
        if not trainer.dist_info.is_main or trainer.state.global_step > 0:
            return
        try:
            from kdinspect.evaluation.plots import save_batch_preview

            save_batch_preview(_first_batch(trainer), trainer.task.classes, self.run_dir / "train_batch.png")
        except Exception as err:  # a preview must never kill a training run
            logger.warning("could not draw the training-batch preview: %s", err)

    def on_eval_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        self._plot(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        self._plot(trainer)


def _first_batch(trainer: Trainer) -> Any:
    """Epoch 0's first batch, read from the dataset directly (the same indices and augmentation the loop will use:
    both are seeded per epoch and index), without starting loader workers or touching the global RNG."""
    from kdinspect.data import collate

    sampler = trainer.train_loader.batch_sampler
    dataset = trainer.train_loader.dataset
    sampler.set_epoch(0)  # type: ignore[union-attr]
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(0)
    indices = next(iter(sampler))  # type: ignore[call-overload]
    return collate([dataset[i] for i in indices[:16]])


class ValidationTable(Callback):
    """After each evaluation, log the epoch's validation table (overall and per class), numbered like the progress
    bar and ``metrics.csv`` (epoch 1 is the first)."""

    def on_eval_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        if not trainer.dist_info.is_main or not metrics:
            return
        from kdinspect.evaluation.report import metrics_table

        st = trainer.state
        best = (
            "new best"
            if improved
            else f"best {st.best:.4f} at epoch {st.best_epoch + 1}"
            if st.best is not None
            else ""
        )
        logger.info(
            "epoch %d/%d validation: main %.4f (%s)",
            st.epoch + 1,
            trainer.epochs,
            metrics.get("main", float("nan")),
            best,
        )
        for line in metrics_table(metrics, trainer.task.classes, trainer.task.kind):
            logger.info("%s", line)


class ProgressBar(Callback):
    """tqdm bar per epoch with ETA and live loss terms (main process only)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None

    def on_epoch_start(self, trainer: Trainer) -> None:
        if not (self.enabled and trainer.dist_info.is_main):
            return
        self.bar = tqdm(
            total=trainer.iters_per_epoch,
            initial=trainer.state.iter_in_epoch,
            desc=f"epoch {trainer.state.epoch + 1}/{trainer.epochs}",
            leave=True,
            mininterval=1.0,
            dynamic_ncols=True,
        )

    def on_step_end(self, trainer: Trainer, losses: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.update(1)
            shown = {k.split(".")[-1] if k != "loss" else k: f"{v:.3g}" for k, v in list(losses.items())[:5]}
            self.bar.set_postfix(shown | {"lr": f"{trainer.schedule.lr:.2e}"}, refresh=False)
            if trainer.state.iter_in_epoch >= trainer.iters_per_epoch:  # the epoch's line stays; validation follows
                self.on_epoch_end(trainer)

    def on_epoch_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_fit_end(self, trainer: Trainer) -> None:
        self.on_epoch_end(trainer)
