"""Typed run configuration: one dataclass per section, one flat YAML per run.

A run YAML maps 1:1 onto :class:`RunConfig`. Unknown keys and type mismatches are errors. Overrides use dotted keys
(``train.epochs=5``, ``model.params.ca_mode=apply_on_laterals``). A section may name another YAML file, which is inlined
(one level of composition, no inheritance).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

_T = TypeVar("_T")

__all__ = [
    "DataConfig",
    "DistillConfig",
    "ExportConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "dump_config",
    "load_config",
    "resolve_config",
    "section_from_dict",
    "with_fields",
]


@dataclass
class DataConfig:
    format: str = "synthetic-det"  # reader name in kdinspect.data.DATASETS
    root: str = ""  # dataset folder; "" for synthetic data (generated under the run folder)
    train: str = "train"  # split name or list file (relative to root) used for training
    val: str = "val"  # split used for evaluation during and after training
    classes: list[str] = field(default_factory=list)  # class names; empty = union of the train and val splits
    imgsz: int = 256  # detection: square input size; segmentation: crop size during training
    eval_imgsz: int = 0  # segmentation: 0 = evaluate at full resolution (padded to a multiple of 32)
    augment: bool = True  # paired random flips (+ photometric jitter) on the training split
    workers: int = 0  # DataLoader worker processes
    limit: int = 0  # use only the first N images of each split (0 = all); for smoke tests
    cache: bool = False  # keep decoded images in memory (per process; up to cache_mb) instead of re-reading them
    cache_mb: int = 2048  # size cap of the decoded-image cache in MiB (images past it are read from disk as usual)
    params: dict[str, Any] = field(default_factory=dict)  # reader-specific options, validated by the reader


@dataclass
class ModelConfig:
    name: str = "unet"  # key in kdinspect.models.MODELS
    num_classes: int = 0  # 0 = number of dataset classes
    params: dict[str, Any] = field(default_factory=dict)  # constructor arguments, validated against the signature


@dataclass
class DistillConfig:
    teacher: str = ""  # teacher checkpoint (.safetensors); "" = no distillation
    method: str = ""  # key in kdinspect.distill.DISTILLERS; "" = the model's default method
    params: dict[str, Any] = field(default_factory=dict)  # method options (weights, temperatures, switches)


@dataclass
class TrainConfig:
    epochs: int = 10  # training epochs
    batch_size: int = 8  # images per process per step
    optimizer: str = "sgd"  # sgd | adamw | rmsprop
    lr: float = 0.01  # base learning rate (per process; not rescaled for DDP)
    momentum: float = 0.9  # SGD momentum / RMSprop momentum
    weight_decay: float = 1e-4  # L2 weight decay
    rmsprop_alpha: float = 0.9  # RMSprop smoothing (Keras rho); 0.99 is PyTorch's default
    rmsprop_eps: float = 1e-7  # RMSprop epsilon (Keras default 1e-7)
    scheduler: str = "step"  # step | cosine | plateau | none
    milestones: list[int] = field(default_factory=list)  # step: epochs at which the LR is multiplied by gamma
    gamma: float = 0.1  # step/plateau decay factor
    patience: int = 5  # plateau: epochs without improvement before decaying
    warmup_iters: int = 0  # linear warm-up iterations
    warmup_ratio: float = 0.001  # warm-up start factor
    warmup_max_frac: float = 0.25  # warm-up is capped at this fraction of the run's iterations (0 = no cap)
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    seed: int = 0  # global seed (data order, augmentation, init)
    deterministic: bool = False  # deterministic algorithms (bit-exact resume on CPU)
    threads: int = 0  # torch intra-op threads; 0 = all cores
    device: str = "cpu"  # cpu | cuda | cuda:N
    amp: bool = False  # bfloat16/float16 autocast on CUDA
    eval_interval: int = 1  # evaluate every N epochs (0 = only at the end)
    checkpoint_interval: int = 0  # also checkpoint every N iterations inside an epoch (0 = only at epoch ends)
    keep_best: bool = True  # keep best.safetensors by the main validation metric
    early_stop: int = 0  # stop after N evaluations without improvement (0 = off)
    log_interval: int = 10  # iterations between CSV step logs
    out_dir: str = "runs"  # parent folder of run folders
    name: str = "run"  # run folder name under out_dir
    resume: bool = False  # continue from <run>/last.safetensors if it exists
    exist_ok: bool = False  # start afresh in an existing run folder instead of the next free name (name-2, ...)
    max_iters: int = 0  # stop after N iterations in total (0 = epochs decide)
    ema: bool = False  # keep an EMA of the weights: evaluated, saved as best.safetensors and deployed
    ema_decay: float = 0.9999  # final EMA decay d; update k uses d * (1 - exp(-k / ema_tau))
    ema_tau: int = 2000  # EMA decay ramp in optimizer steps (0 = constant decay)


@dataclass
class ExportConfig:
    format: str = "onnx"  # onnx | openvino
    opset: int = 17  # ONNX opset
    dynamic: bool = False  # dynamic batch axis
    nms: bool = True  # detection: NMS inside the graph
    int8: bool = False  # static INT8 quantization from calibration images
    calib_images: int = 32  # number of calibration images (from data.val)
    verify: bool = True  # compare runtime vs PyTorch outputs and the metric after export


@dataclass
class RunConfig:
    task: str = "segmentation"  # detection | segmentation | fewshot
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.train.out_dir) / self.train.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SCALARS: dict[type, tuple[type | tuple[type, ...], str]] = {
    bool: (bool, "true/false"),
    int: (int, "an integer"),
    float: ((int, float), "a number"),
    str: (str, "a string"),
}


def _coerce_scalar(value: Any, annotation: type, key: str) -> Any:
    accepted, what = _SCALARS[annotation]
    if not isinstance(value, accepted) or (annotation is not bool and isinstance(value, bool)):
        raise TypeError(f"{key}: expected {what}, got {value!r}")
    return float(value) if annotation is float else value


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a dataclass field annotation, converting where lossless (int -> float, str -> list)."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            try:
                return _coerce(value, arg, key)
            except (TypeError, ValueError):
                continue
        raise TypeError(f"{key}: {value!r} matches none of {annotation}")
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise TypeError(f"{key}: expected a list, got {value!r}")
        (item_type,) = typing.get_args(annotation) or (Any,)
        return [_coerce(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation in _SCALARS:
        return _coerce_scalar(value, annotation, key)
    return value


def _unknown_key(key: str, valid: list[str] | set[str], prefix: str = "") -> str:
    """``unknown config key 'train.epoch' (did you mean 'train.epochs'?)``, else the valid keys."""
    close = difflib.get_close_matches(key, sorted(valid), n=1)
    hint = f"did you mean {prefix + close[0]!r}?" if close else f"valid keys: {', '.join(sorted(valid))}"
    return f"unknown config key {prefix + key!r} ({hint})"


def _build_section(cls: type, data: Any, prefix: str, base_dir: Path | None) -> Any:
    if isinstance(data, str) and data.endswith((".yaml", ".yml")):
        path = Path(data) if base_dir is None or Path(data).is_absolute() else base_dir / data
        data = _read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TypeError(f"{prefix}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise KeyError("; ".join(_unknown_key(k, known, prefix) for k in unknown))
    kwargs = {}
    for name, value in data.items():
        annotation = hints[name]
        if dataclasses.is_dataclass(annotation):
            kwargs[name] = _build_section(annotation, value, f"{prefix}{name}.", base_dir)
        else:
            kwargs[name] = _coerce(value, annotation, f"{prefix}{name}")
    return cls(**kwargs)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    with path.open() as fh:
        data = yaml.safe_load(fh)
    return data or {}


def config_from_dict(data: dict[str, Any], base_dir: Path | None = None) -> RunConfig:
    """Build a :class:`RunConfig` from a nested mapping, rejecting unknown keys and wrong types."""
    return _build_section(RunConfig, data, "", base_dir)


def section_from_dict(cls: type[_T], data: dict[str, Any] | str | None, base_dir: Path | None = None) -> _T:
    """Build any config dataclass (for example a protocol file that nests :class:`RunConfig` sections) from a
    mapping, with the same unknown-key, type and one-level YAML inlining rules as :func:`config_from_dict`."""
    return _build_section(cls, data, "", base_dir)


def _parse_scalar(text: str) -> Any:
    """Parse an override value with YAML rules (``5`` -> int, ``true`` -> bool, ``[1,2]`` -> list)."""
    return yaml.safe_load(text) if text != "" else ""


def apply_overrides(cfg: _T, overrides: list[str] | None) -> _T:
    """Return a copy of ``cfg`` (a :class:`RunConfig` or another config dataclass) with dotted ``key=value``
    overrides applied.

    Keys inside a ``params`` mapping may be new (they are validated when the model/reader/method is built); every other
    key must exist.
    """
    data = asdict(cfg)  # type: ignore[call-overload]
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node, dict) or part not in node:
                where = ".".join(parts[:i])
                valid = [k for k, v in node.items() if isinstance(v, dict)] if isinstance(node, dict) else []
                raise KeyError(_unknown_key(part, valid, f"{where}." if where else "") + f" in override {item!r}")
            node = node[part]
        leaf = parts[-1]
        in_params = len(parts) >= 2 and parts[-2] == "params"
        if not isinstance(node, dict) or (leaf not in node and not in_params):
            valid = sorted(node) if isinstance(node, dict) else []
            raise KeyError(_unknown_key(leaf, valid, ".".join(parts[:-1]) + "."))
        node[leaf] = _parse_scalar(raw)
    return _build_section(type(cfg), data, "", None)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Load a run YAML (or the defaults when ``path`` is None) and apply dotted overrides."""
    if path is None:
        cfg = RunConfig()
    else:
        path = Path(path)
        cfg = config_from_dict(_read_yaml(path), base_dir=path.parent)
    return apply_overrides(cfg, overrides)


def with_fields(cfg: RunConfig, **fields: Any) -> RunConfig:
    """Return a copy of ``cfg`` with keyword overrides: ``epochs=3`` sets the one field of that name in any section
    (``train.epochs``); a name found in several sections (``name``, ``params``, ...) is given as ``section__field``
    (``train__name="my_run"``, ``model__params={"width": 4}``). Values keep their Python type and are type-checked."""
    data = asdict(cfg)
    for key, value in fields.items():
        if "__" in key:
            section, leaf = key.split("__", 1)
            if section not in data or not isinstance(data[section], dict):
                raise KeyError(_unknown_key(section, [k for k, v in data.items() if isinstance(v, dict)]))
            if leaf not in data[section]:
                raise KeyError(_unknown_key(leaf, data[section], f"{section}."))
        else:
            owners = [sec for sec, body in data.items() if isinstance(body, dict) and key in body]
            if key in data and not isinstance(data[key], dict):
                owners = [""]
            if not owners:
                every = {k for body in data.values() if isinstance(body, dict) for k in body}
                raise KeyError(_unknown_key(key, every))
            if len(owners) > 1:
                options = ", ".join(f"{o}__{key}" for o in owners)
                raise KeyError(f"config field {key!r} is in several sections; name one: {options}")
            section, leaf = owners[0], key
        if section:
            data[section][leaf] = value
        else:
            data[leaf] = value
    return _build_section(RunConfig, data, "", None)


def resolve_config(cfg: RunConfig | str | Path, overrides: list[str] | None = None, **fields: Any) -> RunConfig:
    """A :class:`RunConfig` from a config object or a YAML path, with dotted ``key=value`` overrides and keyword
    overrides (see :func:`with_fields`) applied in that order."""
    run = load_config(cfg, overrides) if isinstance(cfg, (str, Path)) else apply_overrides(cfg, overrides)
    return with_fields(run, **fields) if fields else run


def dump_config(cfg: RunConfig, path: str | Path | None = None) -> str:
    """Serialise the resolved config to YAML (and write it to ``path`` if given)."""
    text = yaml.safe_dump(copy.deepcopy(cfg.to_dict()), sort_keys=False)
    if path is not None:
        Path(path).write_text(text)
    return text
