"""``build_dataset``: the only place where the data config meets readers, transforms and datasets."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

from kdinspect.config import DataConfig
from kdinspect.data.datasets import DetectionDataset, SegmentationDataset
from kdinspect.data.structures import DatasetIndex
from kdinspect.data.transforms import DetectionTransform, SegmentationTransform

__all__ = ["TRANSFORM_PARAMS", "build_dataset", "build_transform", "read_split"]

logger = logging.getLogger(__name__)

# keys of ``data.params`` consumed by the transforms (every other key goes to the reader)
TRANSFORM_PARAMS = ("hflip", "vflip", "jitter", "resize", "scales", "max_size")
_KINDS = {"detection": "detection", "fewshot": "detection", "segmentation": "segmentation"}


def _reader(fmt: str):
    from kdinspect.data import DATASETS  # the registry lives in the package __init__

    if fmt not in DATASETS:
        raise KeyError(f"unknown data.format {fmt!r}; valid: {sorted(DATASETS)}")
    return DATASETS[fmt]


def _check_params(reader, params: dict[str, Any], fmt: str) -> None:
    sig = inspect.signature(reader)
    valid = [p for p in sig.parameters if p not in ("root", "split", "classes")]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise KeyError(f"unknown data.params {unknown} for format {fmt!r}; valid: {valid + list(TRANSFORM_PARAMS)}")


def _log_problems(index: DatasetIndex, where: str) -> None:
    """Summarise reader problems: WARNING level when errors dropped data, INFO when there are only warnings."""
    if not index.problems:
        return
    errors = index.errors
    level = logging.WARNING if errors else logging.INFO
    msg = "%s: %d error(s), %d warning(s) in the annotations; run `kdinspect data check` for the full list"
    logger.log(level, msg, where, len(errors), len(index.problems) - len(errors))
    for p in (errors or index.problems)[:5]:
        logger.log(level, "  %s", p)


def read_split(data_cfg: DataConfig, split: str, run_dir: str | Path | None = None) -> DatasetIndex:
    """Read the index of config split ``split`` (``train`` or ``val``) with ``data.format``/``root``/``classes``/
    ``params`` (transform keys removed) and ``data.limit`` applied."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be the config field 'train' or 'val', got {split!r}")
    fmt = data_cfg.format
    reader = _reader(fmt)
    root = data_cfg.root
    if not root:
        if not fmt.startswith("synthetic"):
            raise ValueError(f"data.root is empty; format {fmt!r} needs a dataset folder")
        if run_dir is None:
            raise ValueError("synthetic data with an empty data.root needs run_dir (data goes to <run_dir>/data)")
        root = str(Path(run_dir) / "data")
    params = {k: v for k, v in data_cfg.params.items() if k not in TRANSFORM_PARAMS}
    _check_params(reader, params, fmt)
    if split != "train":
        params.pop("soft_labels", None)  # offline KD targets exist for the training images only
    name = getattr(data_cfg, split)
    index = reader(Path(root), name, list(data_cfg.classes) or None, **params)
    _log_problems(index, f"{root} [{name}]")
    if data_cfg.limit > 0:
        index.records = index.records[: data_cfg.limit]
    if not index.records:
        first = "; ".join(str(p) for p in index.errors[:3])
        raise ValueError(f"no usable images in {root} split {name!r} (format {fmt!r}); {first or 'folder is empty'}")
    return index


def build_dataset(
    data_cfg: DataConfig,
    split: str,
    kind: str,
    train: bool,
    seed: int = 0,
    run_dir: str | Path | None = None,
) -> DetectionDataset | SegmentationDataset:
    """Build the dataset of one config split.

    Args:
        data_cfg: the ``data`` section.
        split: ``train`` or ``val``: the *config field* whose value names the reader split.
        kind: ``detection``, ``fewshot`` (a detection dataset) or ``segmentation``.
        train: training transforms (random flips/jitter/crops) instead of evaluation ones.
        seed: augmentation seed (samples are seeded per (seed, epoch, index)).
        run_dir: where ``synthetic-*`` data goes when ``data.root`` is empty (``<run_dir>/data``).

    Returns:
        A :class:`DetectionDataset` or :class:`SegmentationDataset`.

    Raises:
        KeyError: unknown ``data.format`` or reader parameter (the message lists the valid ones).
        ValueError: bad split/kind, or no usable image in the split.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; valid: {sorted(_KINDS)}")
    index = read_split(data_cfg, split, run_dir)
    if index.task != _KINDS[kind]:
        raise ValueError(f"data.format {data_cfg.format!r} gives {index.task} data but the task is {kind!r}")
    transform = build_transform(data_cfg, index.task, train)
    if isinstance(transform, DetectionTransform):
        return DetectionDataset(index, transform, seed)
    return SegmentationDataset(index, transform, seed)


def build_transform(data_cfg: DataConfig, kind: str, train: bool) -> DetectionTransform | SegmentationTransform:
    """The transform of ``kind`` (``detection``/``fewshot``/``segmentation``) from ``data.imgsz``, ``eval_imgsz``,
    ``augment`` and the transform keys of ``data.params``; used by :func:`build_dataset` and for inference, so that
    prediction preprocesses exactly like evaluation (``train=False``)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; valid: {sorted(_KINDS)}")
    tp = {k: data_cfg.params[k] for k in TRANSFORM_PARAMS if k in data_cfg.params}
    aug = train and data_cfg.augment
    flips = {
        "hflip": float(tp.get("hflip", 0.5)) if aug else 0.0,
        "jitter": float(tp.get("jitter", 0.0)) if aug else 0.0,
    }
    if _KINDS[kind] == "detection":
        scales = tp.get("scales")
        return DetectionTransform(
            data_cfg.imgsz,
            train=train,
            vflip=float(tp.get("vflip", 0.0)) if aug else 0.0,
            resize=str(tp.get("resize", "square")),
            scales=[int(v) for v in scales] if scales and aug else None,
            max_size=int(tp.get("max_size", 0)),
            **flips,
        )
    return SegmentationTransform(
        data_cfg.imgsz if train else 0,
        train=train,
        eval_size=data_cfg.eval_imgsz,
        vflip=float(tp.get("vflip", 0.5)) if aug else 0.0,
        **flips,
    )
