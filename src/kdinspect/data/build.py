"""``build_dataset``: the only place where the data config meets readers, transforms and datasets.

Every split of a run is mapped onto one class list (``data.classes``, else the union over the train and val splits;
a checkpoint's own list when evaluating it): see :mod:`kdinspect.data.classes`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kdinspect.config import DataConfig
from kdinspect.data.classes import box_counts, map_classes, union_classes
from kdinspect.data.datasets import DetectionDataset, ImageCache, SegmentationDataset
from kdinspect.data.paired import PairedDetectionDataset, PairedDetectionTransform
from kdinspect.data.references import REFERENCE_PARAMS, attach_references
from kdinspect.data.structures import DatasetIndex
from kdinspect.data.transforms import DetectionTransform, SegmentationTransform, check_scale_range

__all__ = [
    "REFERENCE_PARAMS",
    "TRANSFORM_PARAMS",
    "build_dataset",
    "build_datasets",
    "build_transform",
    "read_split",
    "read_splits",
    "reference_spec",
]

logger = logging.getLogger(__name__)

# keys of ``data.params`` consumed by the transforms (every other key goes to the reader)
TRANSFORM_PARAMS = (
    "hflip",
    "vflip",
    "jitter",
    "resize",
    "scales",
    "max_size",
    "scale_jitter",
    "mosaic",
    "close_strong_aug",
)
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


def _read(data_cfg: DataConfig, split: str, run_dir: str | Path | None) -> DatasetIndex:
    """The reader's index of config split ``split``, with the reader's own class list (``data.classes`` or its
    default), before class mapping, logging and ``data.limit``."""
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
    params = {k: v for k, v in data_cfg.params.items() if k not in TRANSFORM_PARAMS + REFERENCE_PARAMS}
    _check_params(reader, params, fmt)
    if split != "train":
        params.pop("soft_labels", None)  # offline KD targets exist for the training images only
    index = reader(Path(root), getattr(data_cfg, split), list(data_cfg.classes) or None, **params)
    ref = reference_spec(data_cfg)
    return attach_references(index, ref, root) if ref else index


def reference_spec(data_cfg: DataConfig) -> str:
    """``data.params.reference`` (``auto`` or a file; ``True`` means ``auto``), or "" (single-image mode)."""
    ref = data_cfg.params.get("reference", "")
    if ref is True:
        return "auto"
    if ref in (None, False, ""):
        for key in ("align", "reference_perturb"):
            if data_cfg.params.get(key) not in ("none", None):
                raise ValueError(f"data.params.{key} needs data.params.reference (auto or an image file)")
        return ""
    return str(ref)


def _log_unknown(index: DatasetIndex, where: str, owner: str) -> None:
    """One WARNING per class whose boxes were rejected as ``unknown_class`` (files, and who does not know it)."""
    per: dict[str, list[str]] = {}
    for p in index.problems:
        if p.kind == "unknown_class" and p.message.startswith("class '"):
            name = p.message.split("'")[1]
            per.setdefault(name, []).append(p.path)
    for name, files in per.items():
        shown = ", ".join(Path(f).name for f in files[:3]) + (" ..." if len(files) > 3 else "")
        logger.warning(
            "%s: boxes of class %r are unknown to %s: rejected in %d file(s) (%s)",
            where,
            name,
            owner,
            len(files),
            shown,
        )


def _coverage(train: DatasetIndex, val: DatasetIndex, classes: list[str]) -> None:
    """Warn about classes the train split cannot teach: boxes in val but none in train, or none at all."""
    n_train, n_val = box_counts(train), box_counts(val)
    for name in classes:
        if n_train[name]:
            continue
        if n_val[name]:
            logger.warning(
                "class %r has %d box(es) in the val split but none in the train split: the model cannot learn it",
                name,
                n_val[name],
            )
        else:
            logger.warning("class %r has no box in the train split nor in the val split", name)


def _finish(index: DatasetIndex, data_cfg: DataConfig, split: str) -> DatasetIndex:
    where = f"{index.root or data_cfg.root} [{getattr(data_cfg, split)}]"
    _log_problems(index, where)
    if data_cfg.limit > 0:
        index.records = index.records[: data_cfg.limit]
    if not index.records:
        first = "; ".join(str(p) for p in index.errors[:3])
        raise ValueError(
            f"no usable images in {data_cfg.root or index.root} split {getattr(data_cfg, split)!r} "
            f"(format {data_cfg.format!r}); {first or 'folder is empty'}"
        )
    return index


def read_splits(
    data_cfg: DataConfig, splits: Sequence[str] = ("train", "val"), run_dir: str | Path | None = None
) -> dict[str, DatasetIndex]:
    """Read config splits (``train``/``val``) on ONE class list: ``data.classes``, else the union over the train and
    val splits (:func:`~kdinspect.data.classes.union_classes`; both are read even when one is asked for, and a split
    that cannot be read is left out of the union with a warning). Warns about a class with boxes in val but none in
    train. ``data.limit`` is applied after the mapping."""
    wanted = list(dict.fromkeys(splits))
    raw = {s: _read(data_cfg, s, run_dir) for s in wanted}
    if raw[wanted[0]].task == "detection" and not data_cfg.classes:
        for s in ("train", "val"):
            if s not in raw:
                same = [o for o in raw if getattr(data_cfg, o) == getattr(data_cfg, s)]
                try:
                    raw[s] = raw[same[0]] if same else _read(data_cfg, s, run_dir)
                except (FileNotFoundError, ValueError) as err:
                    logger.warning(
                        "the class list of %s cannot include the %s split %r (%s): the %s split's own list %s is used",
                        data_cfg.root or "the data",
                        s,
                        getattr(data_cfg, s),
                        err,
                        wanted[0],
                        raw[wanted[0]].classes,
                    )
        classes = union_classes([raw[s].classes for s in ("train", "val") if s in raw])
        raw = {s: map_classes(i, classes) for s, i in raw.items()}
    if "train" in raw and "val" in raw and raw["train"].task == "detection":
        _coverage(raw["train"], raw["val"], list(raw["train"].classes))
    out = {}
    for s in wanted:
        index = raw[s]
        if data_cfg.classes:
            _log_unknown(index, f"{index.root} [{getattr(data_cfg, s)}]", "data.classes")
        out[s] = _finish(index, data_cfg, s)
    return out


def read_split(
    data_cfg: DataConfig, split: str, run_dir: str | Path | None = None, classes: Sequence[str] | None = None
) -> DatasetIndex:
    """Read the index of config split ``split`` (``train`` or ``val``) with ``data.format``/``root``/``classes``/
    ``params`` (transform keys removed) and ``data.limit`` applied.

    Args:
        data_cfg: the ``data`` section.
        split: ``train`` or ``val``.
        run_dir: where synthetic data goes when ``data.root`` is empty.
        classes: a model's class list (a checkpoint's): boxes are mapped onto it by name, and boxes of a class the
            model does not know are rejected as ``unknown_class`` errors and logged. None: the dataset's one class
            list (see :func:`read_splits`).
    """
    if classes is None:
        return read_splits(data_cfg, [split], run_dir)[split]
    index = map_classes(_read(data_cfg, split, run_dir), classes, "the model")
    _log_unknown(index, f"{index.root} [{getattr(data_cfg, split)}]", "the model")
    return _finish(index, data_cfg, split)


def _dataset(
    index: DatasetIndex,
    data_cfg: DataConfig,
    kind: str,
    train: bool,
    seed: int,
    epochs: int = 0,
    cache: ImageCache | None = None,
):
    if index.task != _KINDS[kind]:
        raise ValueError(f"data.format {data_cfg.format!r} gives {index.task} data but the task is {kind!r}")
    transform = build_transform(data_cfg, index.task, train)
    if isinstance(transform, PairedDetectionTransform):
        if data_cfg.cache or float(data_cfg.params.get("mosaic", 0.0)) > 0:
            raise ValueError("data.cache and data.params.mosaic are not supported with a reference image yet")
        align = str(data_cfg.params.get("align", "none"))
        return PairedDetectionDataset(index, transform, seed, align, data_cfg.params.get("reference_perturb"))
    if cache is None and data_cfg.cache:
        cache = ImageCache(data_cfg.cache_mb * 2**20)
    aug = train and data_cfg.augment
    mosaic = float(data_cfg.params.get("mosaic", 0.0)) if aug else 0.0
    if isinstance(transform, DetectionTransform):
        ds: DetectionDataset | SegmentationDataset = DetectionDataset(index, transform, seed, cache, mosaic)
    elif mosaic > 0:
        raise ValueError("data.params.mosaic is a detection augmentation; segmentation has scale_jitter")
    else:
        ds = SegmentationDataset(index, transform, seed, cache)
    close = int(data_cfg.params.get("close_strong_aug", 0))
    if close < 0:
        raise ValueError(f"data.params.close_strong_aug must be >= 0 epochs, got {close}")
    if aug and close > 0:
        if epochs <= 0:
            raise ValueError("data.params.close_strong_aug needs the run's epoch count (build_datasets(epochs=...))")
        ds.close_strong_at = max(epochs - close, 0)
    return ds


def build_dataset(
    data_cfg: DataConfig,
    split: str,
    kind: str,
    train: bool,
    seed: int = 0,
    run_dir: str | Path | None = None,
    classes: Sequence[str] | None = None,
) -> DetectionDataset | SegmentationDataset:
    """Build the dataset of one config split.

    Args:
        data_cfg: the ``data`` section.
        split: ``train`` or ``val``: the *config field* whose value names the reader split.
        kind: ``detection``, ``fewshot`` (a detection dataset) or ``segmentation``.
        train: training transforms (random flips/jitter/crops) instead of evaluation ones.
        seed: augmentation seed (samples are seeded per (seed, epoch, index)).
        run_dir: where ``synthetic-*`` data goes when ``data.root`` is empty (``<run_dir>/data``).
        classes: the model's class list when evaluating a checkpoint (see :func:`read_split`); None = the dataset's
            one class list (``data.classes``, else the union over train and val).

    Returns:
        A :class:`DetectionDataset` or :class:`SegmentationDataset`.

    Raises:
        KeyError: unknown ``data.format`` or reader parameter (the message lists the valid ones).
        ValueError: bad split/kind, or no usable image in the split.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; valid: {sorted(_KINDS)}")
    return _dataset(read_split(data_cfg, split, run_dir, classes), data_cfg, kind, train, seed)


def build_datasets(
    data_cfg: DataConfig, kind: str, seed: int = 0, run_dir: str | Path | None = None, epochs: int = 0
) -> tuple[DetectionDataset | SegmentationDataset, DetectionDataset | SegmentationDataset]:
    """The training and evaluation datasets of a run, each split read once, both on the dataset's one class list.

    ``epochs`` (the run's ``train.epochs``) places ``data.params.close_strong_aug``: the strong augmentations are off
    from epoch ``epochs - close_strong_aug`` on. With ``data.cache`` both datasets share one cache (``data.cache_mb``).
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; valid: {sorted(_KINDS)}")
    idx = read_splits(data_cfg, ("train", "val"), run_dir)
    cache = ImageCache(data_cfg.cache_mb * 2**20) if data_cfg.cache else None
    return (
        _dataset(idx["train"], data_cfg, kind, True, seed, epochs, cache),
        _dataset(idx["val"], data_cfg, kind, False, seed, epochs, cache),
    )


def build_transform(
    data_cfg: DataConfig, kind: str, train: bool
) -> DetectionTransform | PairedDetectionTransform | SegmentationTransform:
    """The transform of ``kind`` (``detection``/``fewshot``/``segmentation``) from ``data.imgsz``, ``eval_imgsz``,
    ``augment`` and the transform keys of ``data.params``; used by :func:`build_dataset` and for inference, so that
    prediction preprocesses exactly like evaluation (``train=False``). With ``data.params.reference`` a detection
    transform is the :class:`PairedDetectionTransform` (same geometry for the image and its reference)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; valid: {sorted(_KINDS)}")
    tp = {k: data_cfg.params[k] for k in TRANSFORM_PARAMS if k in data_cfg.params}
    aug = train and data_cfg.augment
    flips = {
        "hflip": float(tp.get("hflip", 0.5)) if aug else 0.0,
        "jitter": float(tp.get("jitter", 0.0)) if aug else 0.0,
    }
    jitter_range = check_scale_range(tp.get("scale_jitter")) if aug else None
    if _KINDS[kind] == "detection":
        scales = tp.get("scales")
        common = {
            "train": train,
            "vflip": float(tp.get("vflip", 0.0)) if aug else 0.0,
            "resize": str(tp.get("resize", "square")),
            "scales": [int(v) for v in scales] if scales and aug else None,
            "max_size": int(tp.get("max_size", 0)),
            **flips,
        }
        if reference_spec(data_cfg):
            if jitter_range is not None:
                raise ValueError("data.params.scale_jitter is not supported with a reference image yet")
            return PairedDetectionTransform(data_cfg.imgsz, **common)
        return DetectionTransform(data_cfg.imgsz, scale_jitter=jitter_range, **common)
    return SegmentationTransform(
        data_cfg.imgsz if train else 0,
        train=train,
        eval_size=data_cfg.eval_imgsz,
        vflip=float(tp.get("vflip", 0.5)) if aug else 0.0,
        scale_jitter=jitter_range,
        **flips,
    )
