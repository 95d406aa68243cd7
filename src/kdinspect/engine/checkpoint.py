"""Checkpoints: one safetensors file holding tensors, with the JSON state in its header.

Layout of ``<run>/last.safetensors``:

- tensors ``model.<name>``: the deployable model (for distillation runs: the student only, never the teacher);
- optional tensors ``ema.<name>``: the EMA of the deployable model's weights (``train.ema``; ``last.safetensors``
  only: ``model.*`` then holds the raw training weights, and the header's ``ema`` entry the update count).
  :func:`load_model` returns these weights when present; files without them load as before;
- tensors ``optim.<param index>.<state name>``: optimizer state (momentum buffers, Adam moments ...);
- tensors ``rng.torch`` / ``rng.cuda.<i>``: torch RNG states;
- header metadata ``kdinspect``: JSON with the format tag, kdinspect version, resolved run config, class names, task
  kind, trainer state (epoch, iteration, best metric ...), optimizer hyper-parameters, scheduler state and the Python /
  NumPy RNG states.

Files are written atomically (temporary file + rename), so a run killed at any moment leaves the previous checkpoint
intact. Loading never unpickles anything; a truncated or foreign file raises :class:`CheckpointError`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from kdinspect import __version__
from kdinspect.config import RunConfig, apply_overrides, config_from_dict
from kdinspect.utils.io import atomic_path

__all__ = [
    "FORMAT_TAG",
    "Checkpoint",
    "CheckpointError",
    "LoadedModel",
    "capture_rng",
    "load_checkpoint",
    "load_model",
    "nonfinite_tensors",
    "optimizer_from_tensors",
    "optimizer_to_tensors",
    "restore_rng",
    "save_checkpoint",
    "stored_mask_threshold",
]

FORMAT_TAG = "kdinspect-checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupt or not a kdinspect checkpoint."""


@dataclass
class Checkpoint:
    """Decoded checkpoint: model weights, optional optimizer tensors, and the JSON state."""

    path: Path
    model: dict[str, Tensor]
    optim: dict[str, Tensor]
    rng: dict[str, Tensor]
    state: dict[str, Any]
    ema: dict[str, Tensor] = field(default_factory=dict)  # EMA weights (empty when the file has none)

    @property
    def ema_updates(self) -> int:
        return int(self.state.get("ema", {}).get("updates", 0))

    @property
    def weights(self) -> dict[str, Tensor]:
        """The weights to deploy: the EMA ones when stored, else ``model``."""
        return self.ema or self.model

    @property
    def config(self) -> RunConfig:
        return config_from_dict(self.state["config"])

    @property
    def classes(self) -> list[str]:
        return list(self.state.get("classes", []))

    @property
    def kind(self) -> str:
        return str(self.state.get("task", ""))


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint, ready for inference."""

    model: nn.Module
    cfg: RunConfig
    classes: list[str]
    kind: str
    path: Path
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def mask_thr(self) -> float | None:
        """Segmenters: the threshold chosen on validation at training time (see :func:`stored_mask_threshold`)."""
        return stored_mask_threshold(self.state) if self.kind == "segmentation" else None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer | np.floating):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Tensor):
        return obj.tolist()
    if isinstance(obj, tuple | set):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint header")


def capture_rng() -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Current RNG states: torch (CPU/CUDA) as tensors, Python and NumPy as JSON-able data."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    meta = {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    return tensors, meta


def restore_rng(tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        states = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
        if states:
            torch.cuda.set_rng_state_all(states)
    if "python" in meta:
        version, internal, gauss = meta["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in meta:
        name, keys, pos, has_gauss, cached = meta["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (``optim.<idx>.<name>``) and JSON (param groups, scalars)."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for name, value in st.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_tensors(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Rebuild an optimizer ``state_dict`` from :func:`optimizer_to_tensors` output."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    for key, value in meta.get("scalars", {}).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    cfg: RunConfig,
    classes: list[str],
    kind: str,
    trainer_state: dict[str, Any] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler_state: dict[str, Any] | None = None,
    with_rng: bool = True,
    ema_state: dict[str, Tensor] | None = None,
    ema_updates: int = 0,
) -> Path:
    """Write a checkpoint atomically and return its path.

    Args:
        path: destination ``.safetensors`` file.
        model: the deployable model (its ``state_dict`` is stored under ``model.``).
        cfg: resolved run config (stored, so eval/export/predict need no flags).
        classes: class names.
        kind: task kind (``detection`` / ``segmentation``).
        trainer_state: epoch, iteration, best metric and similar JSON-able values.
        optimizer: optimizer whose state is stored for ``--resume``.
        scheduler_state: JSON-able LR schedule state.
        with_rng: also store RNG states (needed for bit-exact resume).
        ema_state: EMA weights (same keys as ``model``), stored as ``ema.*`` next to the raw ones.
        ema_updates: the EMA's update count (stored with ``ema_state``).
    """
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema_state is not None:
        tensors |= {f"ema.{k}": v for k, v in ema_state.items()}
    state: dict[str, Any] = {
        "format": FORMAT_TAG,
        "kdinspect_version": __version__,
        "config": cfg.to_dict(),
        "classes": list(classes),
        "task": kind,
        "model_name": cfg.model.name if isinstance(cfg.model.name, str) else repr(cfg.model.name),
        "trainer": trainer_state or {},
        "scheduler": scheduler_state or {},
    }
    if ema_state is not None:
        state["ema"] = {"updates": int(ema_updates)}
    if optimizer is not None:
        opt_tensors, opt_meta = optimizer_to_tensors(optimizer)
        tensors.update(opt_tensors)
        state["optimizer"] = opt_meta
    if with_rng:
        rng_tensors, rng_meta = capture_rng()
        tensors.update(rng_tensors)
        state["rng"] = rng_meta
    # safetensors wants contiguous, unshared CPU tensors
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    header = {"kdinspect": json.dumps(state, default=_json_default)}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return path


def nonfinite_tensors(tensors: dict[str, Tensor]) -> list[str]:
    """``"<name>: <n> NaN/Inf of <size> values"`` for every floating-point tensor holding NaN or Inf."""
    bad = []
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad.append(f"{name}: {int((~torch.isfinite(t)).sum())} NaN/Inf of {t.numel()} values")
    return bad


def load_checkpoint(path: str | Path, check_finite: bool = True) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (never unpickles).

    Args:
        path: the ``.safetensors`` file.
        check_finite: refuse model weights holding NaN/Inf (a diverged run), naming the tensors.

    Raises:
        CheckpointError: the file is missing, truncated/corrupt, not a kdinspect checkpoint, or (``check_finite``)
            its weights are not finite.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix in (".pt", ".pth", ".ckpt", ".pkl"):
        raise CheckpointError(
            f"{path}: pickle-based checkpoints are not loaded (they can run arbitrary code); "
            "kdinspect checkpoints are .safetensors files"
        )
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open is not a mapping
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({err})") from err
    if "kdinspect" not in meta:
        raise CheckpointError(f"{path}: not a kdinspect checkpoint (no 'kdinspect' header; keys: {sorted(meta)})")
    try:
        state = json.loads(meta["kdinspect"])
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: corrupt checkpoint header ({err})") from err
    if state.get("format") != FORMAT_TAG:
        raise CheckpointError(f"{path}: unsupported checkpoint format {state.get('format')!r}; expected {FORMAT_TAG}")
    groups: dict[str, dict[str, Tensor]] = {"model": {}, "optim": {}, "rng": {}, "ema": {}}
    for key, value in tensors.items():
        prefix, rest = key.split(".", 1)
        if prefix in ("model", "ema"):
            groups[prefix][rest] = value
        elif prefix == "optim":
            groups["optim"][key] = value
        elif prefix == "rng":
            groups["rng"][key] = value
    named = {**groups["model"], **{f"ema.{k}": v for k, v in groups["ema"].items()}}
    if check_finite and (bad := nonfinite_tensors(named)):
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more tensors" if len(bad) > 5 else "")
        raise CheckpointError(
            f"{path}: the model weights are not finite ({shown}); the run diverged before this checkpoint was written "
            "(use an earlier checkpoint, or retrain with a lower train.lr or train.grad_clip)"
        )
    return Checkpoint(path, groups["model"], groups["optim"], groups["rng"], state, groups["ema"])


def stored_mask_threshold(state: dict[str, Any]) -> float | None:
    """The segmentation threshold a checkpoint carries: the ODS threshold (best dataset F1 over 0.01..0.99) of the
    validation run whose metrics the file stores with its weights (``trainer.metrics``: the evaluation that made
    ``best.safetensors``, or the final one in ``last.safetensors``); None for files without one (older runs,
    runs that never validated)."""
    thr = (state.get("trainer") or {}).get("metrics", {}).get("ods_threshold")
    return None if thr is None else float(thr)


def load_model(path: str | Path, device: str | torch.device = "cpu", overrides: Sequence[str] = ()) -> LoadedModel:
    """Rebuild the model named in a checkpoint's config and load its weights (strict), in eval mode.

    ``overrides`` (dotted ``key=value``) change the stored config first; ``model.params.*`` ones rebuild the model with
    the new values, which suits inference-time settings (e.g. ``model.params.score_thresh``, Faster R-CNN's
    ``rpn_post_nms_top_n``). One that changes the architecture fails the strict weight check with a clear error.
    A checkpoint with EMA weights (``ema.*``, ``train.ema``) loads those: they are what gets deployed.
    """
    from kdinspect.models import build_model

    ckpt = load_checkpoint(path)
    cfg = apply_overrides(ckpt.config, list(overrides)) if overrides else ckpt.config
    classes = ckpt.classes
    params = dict(cfg.model.params)
    if params.get("pretrained"):
        params["pretrained"] = False  # the checkpoint holds every weight; never look for ImageNet files here
    model = build_model(cfg.model.name, cfg.model.num_classes or len(classes), params)
    after = f" (after the overrides {list(overrides)})" if overrides else ""
    try:
        missing, unexpected = model.load_state_dict(ckpt.weights, strict=False)
    except RuntimeError as err:  # same names, other shapes
        raise CheckpointError(f"{path}: weights do not match model {cfg.model.name!r}{after}: {err}") from err
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match model {cfg.model.name!r}{after}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    return LoadedModel(model.to(device).eval(), cfg, classes, ckpt.kind, Path(path), ckpt.state)
