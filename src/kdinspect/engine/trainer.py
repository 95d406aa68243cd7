"""The training loop: batch -> task(batch) -> loss.backward() -> optimizer step -> callbacks."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from kdinspect.data.structures import Batch
from kdinspect.engine.distributed import DistInfo, barrier
from kdinspect.engine.ema import ModelEMA
from kdinspect.engine.optim import LRSchedule
from kdinspect.tasks.base import Task

__all__ = ["Callback", "TrainState", "Trainer"]

logger = logging.getLogger(__name__)

EvalFn = Callable[[Task], dict[str, float]]


@dataclass
class TrainState:
    """Everything about training progress that a checkpoint must restore."""

    epoch: int = 0  # current (0-based) epoch
    iter_in_epoch: int = 0  # batches of `epoch` already consumed
    global_step: int = 0  # optimizer steps taken
    best: float | None = None  # best main validation metric
    best_epoch: int = -1
    bad_evals: int = 0  # evaluations since the last improvement
    skipped_files: int = 0  # unreadable files met so far (a file met in 3 epochs counts 3 times)
    skipped_names: list[str] = field(default_factory=list)  # the distinct unreadable files, sorted
    dropped_images: int = 0  # readable images left out: one-image batches with BatchNorm in training mode
    finished: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class Callback:
    """Hooks called by :class:`Trainer` at fixed events. Override what you need."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer) -> None: ...
    def on_step_end(self, trainer: Trainer, losses: dict[str, float]) -> None: ...
    def on_epoch_end(self, trainer: Trainer) -> None: ...
    def on_eval_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...


@dataclass
class Trainer:
    """Runs epochs of a :class:`Task`.

    Args:
        task: the task to train (for DDP it is wrapped here; a Distiller's teacher is not a submodule, so it stays
            unwrapped and frozen).
        optimizer: optimizer over the task's trainable parameters.
        schedule: LR schedule, stepped every iteration.
        train_loader: loader whose ``batch_sampler`` is an ``EpochBatchSampler`` and whose dataset may have
            ``set_epoch``.
        epochs: number of epochs.
        evaluate: ``evaluate(task) -> metrics`` with a ``"main"`` key (higher is better); None = no evaluation.
        eval_interval: evaluate every N epochs (0 = only after the last epoch).
        max_iters: stop after this many optimizer steps in total (0 = no cap).
        callbacks: event hooks, called in order.
        device: torch device string.
        grad_clip: max global gradient norm (0 = off).
        amp: bfloat16 autocast on CUDA.
        dist_info: rank/world size of a torchrun launch.
        early_stop: stop after this many evaluations without improvement (0 = off).
        ema: EMA of ``task.deployable()`` (the student of a distiller, never the DDP wrapper): updated after every
            optimizer step; evaluations see its weights (see :mod:`kdinspect.engine.ema`).
    """

    task: Task
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    train_loader: DataLoader
    epochs: int
    evaluate: EvalFn | None = None
    eval_interval: int = 1
    max_iters: int = 0
    callbacks: Sequence[Callback] = ()
    device: str = "cpu"
    grad_clip: float = 0.0
    amp: bool = False
    dist_info: DistInfo = field(default_factory=DistInfo)
    early_stop: int = 0
    ema: ModelEMA | None = None
    state: TrainState = field(default_factory=TrainState)
    last_metrics: dict[str, float] = field(default_factory=dict)
    should_stop: bool = False

    def __post_init__(self) -> None:
        self.task.to(self.device)
        if self.ema is not None:
            self.ema.to(self.device)
        self.runner: nn.Module = self.task
        if self.dist_info.enabled:
            ids = [self.dist_info.local_rank] if self.device.startswith("cuda") else None
            self.runner = DistributedDataParallel(self.task, device_ids=ids, find_unused_parameters=True)
        self._nonfinite = 0

    # ----------------------------------------------------------------------------------------------- events
    def _emit(self, event: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(self, *args)

    @property
    def iters_per_epoch(self) -> int:
        return len(self.train_loader.batch_sampler)  # type: ignore[arg-type]

    def _done(self) -> bool:
        return self.should_stop or (self.max_iters > 0 and self.state.global_step >= self.max_iters)

    # ----------------------------------------------------------------------------------------------- loop
    def fit(self) -> TrainState:
        """Train from ``self.state`` (fresh or restored) to the end; returns the final state."""
        self._emit("on_fit_start")
        evaluated_at = -1
        while self.state.epoch < self.epochs and not self._done():
            self.train_one_epoch()
            if self.state.iter_in_epoch < self.iters_per_epoch:  # stopped mid-epoch (max_iters / early stop)
                break
            epoch_done = self.state.epoch + 1
            wants_eval = self.eval_interval > 0 and epoch_done % self.eval_interval == 0
            if self.evaluate is not None and (wants_eval or epoch_done == self.epochs or self._done()):
                self.run_eval()
                evaluated_at = self.state.global_step
            self.state.epoch += 1
            self.state.iter_in_epoch = 0
            self._emit("on_epoch_end")
        if self.evaluate is not None and evaluated_at != self.state.global_step:
            self.run_eval()
        self.state.finished = True
        self._emit("on_fit_end")
        return self.state

    def train_one_epoch(self) -> None:
        sampler = self.train_loader.batch_sampler
        sampler.set_epoch(self.state.epoch, self.state.iter_in_epoch)  # type: ignore[union-attr]
        dataset = self.train_loader.dataset
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.state.epoch)
        self.task.train()
        self._emit("on_epoch_start")
        for batch in self.train_loader:
            if self._done():
                break
            losses = self.train_step(batch)
            self.state.iter_in_epoch += 1
            self.state.global_step += 1
            self._emit("on_step_end", losses)

    def train_step(self, batch: Batch) -> dict[str, float]:
        """One optimizer step; returns the loss terms as floats (empty if the batch was unusable)."""
        if batch.skipped:
            self.state.skipped_files += len(batch.skipped)
            self.state.skipped_names = sorted(set(self.state.skipped_names) | set(batch.skipped))
            logger.warning("skipped %d unreadable file(s): %s", len(batch.skipped), ", ".join(batch.skipped))
        self.schedule.step(self.state.global_step)
        batch_size = int(getattr(self.train_loader.batch_sampler, "batch_size", 0) or 0)
        lone = len(batch) == 1 and batch_size > 1 and _batchnorm_in_training(self.task)
        if lone:
            # BatchNorm cannot normalise one image whose feature map is 1x1 somewhere; a lone image (the rest of its
            # batch unreadable, or the epoch's last partial batch) is left out, counted and named, never silently
            self.state.dropped_images += 1
            logger.warning(
                "dropped a one-image training batch at step %d (BatchNorm in training mode needs 2+ images): %s",
                self.state.global_step,
                batch.metas[0].path,
            )
        usable = len(batch) > 0 and not lone
        if self.dist_info.enabled and not self._all_usable(usable):
            # DDP: every process steps or none does (a process that skips alone would hang the others' all-reduce)
            if usable:
                self.state.dropped_images += len(batch)
                logger.warning(
                    "dropped %d training image(s) at step %d: another process has no usable batch: %s",
                    len(batch),
                    self.state.global_step,
                    ", ".join(m.path for m in batch.metas),
                )
            return {}
        if not usable:
            return {}
        batch = batch.to(self.device)
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if self.amp and self.device.startswith("cuda")
            else contextlib.nullcontext()
        )
        try:
            with autocast:
                out = self.runner(batch)
        except ValueError as err:
            if len(batch) == 1 and "Expected more than 1 value per channel" in str(err):
                h, w = batch.images.shape[-2:]
                raise ValueError(
                    f"train.batch_size={batch_size}: a BatchNorm layer of the model sees one value per channel with "
                    f"one {h}x{w} image per batch ({err}); use train.batch_size >= 2, a larger data.imgsz, or a "
                    "model norm without batch statistics (e.g. model.params.norm=gn where the model has it)"
                ) from err
            raise
        loss = out["loss"]
        if not torch.isfinite(loss):
            self._nonfinite += 1
            logger.warning("non-finite loss at step %d (%s); step skipped", self.state.global_step, _fmt(out))
            if self._nonfinite >= 20:
                raise FloatingPointError(f"loss was non-finite for 20 steps in a row (last: {_fmt(out)})")
            self.optimizer.zero_grad(set_to_none=True)
            return {}
        self._nonfinite = 0
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for p in self.task.parameters() if p.requires_grad], self.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.task.deployable())
        return {k: float(v.detach()) for k, v in out.items() if torch.is_tensor(v) and v.numel() == 1}

    def _all_usable(self, usable: bool) -> bool:
        """Whether every process of a DDP run has a usable batch this step (one small all-reduce)."""
        device = self.device if self.device.startswith("cuda") else "cpu"
        flag = torch.tensor([1 if usable else 0], dtype=torch.int32, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def run_eval(self) -> dict[str, float]:
        """Evaluate on the main process, share the main metric, update best/early-stop bookkeeping."""
        metrics: dict[str, float] = {}
        if self.dist_info.is_main and self.evaluate is not None:
            ema = self.ema
            swap = ema.swapped_into(self.task.deployable()) if ema is not None else contextlib.nullcontext()
            with swap:
                metrics = self.evaluate(self.task)
            self.task.train()
        if self.dist_info.enabled:
            box = [metrics]
            dist.broadcast_object_list(box, src=0)
            metrics = box[0]
        barrier()
        main = float(metrics.get("main", float("nan")))
        improved = math.isfinite(main) and (self.state.best is None or main > self.state.best)
        if improved:
            self.state.best, self.state.best_epoch, self.state.bad_evals = main, self.state.epoch, 0
        else:
            self.state.bad_evals += 1
        self.schedule.on_eval(main)
        if self.early_stop > 0 and self.state.bad_evals >= self.early_stop:
            logger.info("early stop: %d evaluations without improvement", self.state.bad_evals)
            self.should_stop = True
        self.last_metrics = metrics
        self._emit("on_eval_end", metrics, improved)
        return metrics


def _batchnorm_in_training(module: nn.Module) -> bool:
    """Whether any BatchNorm layer of ``module`` uses batch statistics (training mode; frozen ones do not)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in module.modules())


def _fmt(out: dict[str, Any]) -> str:
    return ", ".join(f"{k}={float(v):.4g}" for k, v in out.items() if torch.is_tensor(v) and v.numel() == 1)
