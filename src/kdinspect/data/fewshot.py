"""NEU-DET few-shot protocol: DKAN's class splits, TFA-style K-shot sets and class-subset helpers.

K-shot files ``fewshot_split/seed{N}/box_{K}shot_{class}_train.txt`` (Chan-Sun/DKAN) list K image ids per class. As in
MMFewShot's ``FewShotVOCDataset`` (``ann_classes=[class]`` per file, then ``ann_shot_filter``, then merging of
entries with the same image id): from each listed image only that class's boxes are kept, each class is capped at K
boxes in total (instance-wise K-shot), and an image listed by several class files becomes one record holding the
boxes of each of those classes.

How the cap picks boxes (``cap``):

- ``random`` (default): MMFewShot's rule (``BaseFewShotDataset._filter_annotations``): ``np.random.choice(n, K,
  replace=False)`` over all of the class's candidate boxes, here drawn from ``RandomState(cap_seed)`` (MMFewShot uses
  the unseeded global NumPy state, so its exact draw cannot be reproduced). Kept boxes spread over the listed images.
- ``first``: the first K boxes of the class in file order (list order, then XML order). Deterministic without any
  RNG and nested across K (5-shot boxes are a subset of 10-shot boxes), but it concentrates the shots on the first
  listed images (seed 1, 5-shot ``patches``: all 5 boxes come from the first 2 of the 5 listed images).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from kdinspect.data.common import read_list_file, report, unique_entries
from kdinspect.data.structures import DatasetIndex, DetRecord, Problem
from kdinspect.data.voc import read_voc, read_voc_ids

__all__ = [
    "NEU_CLASSES",
    "NEU_SPLITS",
    "filter_classes",
    "kshot_file",
    "load_kshot",
    "read_neu_fewshot",
    "split_classes",
]

NEU_CLASSES = ["crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches"]

# DKAN `NEU_SPLIT`: split id -> (base classes, novel classes); the model's class order is base first, then novel.
NEU_SPLITS: dict[int, tuple[list[str], list[str]]] = {
    1: (["crazing", "inclusion", "patches"], ["pitted_surface", "rolled-in_scale", "scratches"]),
    2: (["inclusion", "rolled-in_scale", "scratches"], ["crazing", "patches", "pitted_surface"]),
    3: (["pitted_surface", "patches", "scratches"], ["crazing", "inclusion", "rolled-in_scale"]),
}


def split_classes(split_id: int, which: str = "all") -> list[str]:
    """Class list of a DKAN split: ``base``, ``novel`` or ``all`` (base first, then novel)."""
    if split_id not in NEU_SPLITS:
        raise KeyError(f"unknown NEU-DET class split {split_id!r}; valid: {sorted(NEU_SPLITS)}")
    base, novel = NEU_SPLITS[split_id]
    options = {"base": base, "novel": novel, "all": base + novel}
    if which not in options:
        raise ValueError(f"which must be one of {sorted(options)}, got {which!r}")
    return list(options[which])


def filter_classes(index: DatasetIndex, classes: list[str], drop_empty: bool = False) -> DatasetIndex:
    """Keep only the boxes of ``classes`` and re-index labels to that order.

    Args:
        index: a detection index.
        classes: the class subset, in the new label order (every name must be in ``index.classes``).
        drop_empty: drop images left without boxes (MMFewShot's ``filter_empty_gt`` for training sets).

    Returns:
        A new index (records are copied; the input is unchanged).
    """
    unknown = [c for c in classes if c not in index.classes]
    if unknown:
        raise ValueError(f"classes {unknown} not in the dataset classes {index.classes}")
    remap = np.full(len(index.classes), -1, dtype=np.int64)
    for new, name in enumerate(classes):
        remap[index.classes.index(name)] = new
    records = []
    for rec in index.records:
        new_labels = remap[rec.labels]
        keep = new_labels >= 0
        if drop_empty and not keep.any():
            continue
        extra = {
            k: (v[keep] if isinstance(v, np.ndarray) and v.shape[:1] == keep.shape else v) for k, v in rec.extra.items()
        }
        records.append(
            DetRecord(rec.image, rec.boxes[keep], new_labels[keep], rec.image_id, rec.width, rec.height, extra)
        )
    return DatasetIndex(index.task, list(classes), records, list(index.problems), index.root, index.split)


def kshot_file(root: Path, seed: int, shots: int, cls: str) -> Path:
    """Path of a K-shot list: ``<root>/fewshot_split/seed{seed}/box_{shots}shot_{cls}_train.txt``."""
    return Path(root) / "fewshot_split" / f"seed{seed}" / f"box_{shots}shot_{cls}_train.txt"


def _merge_picks(entries: list[tuple[str, int, int]], by_id: dict[str, DetRecord]) -> list[DetRecord]:
    """One record per image holding its picked boxes: entries are (image id, new label, box index in the record)."""
    merged: dict[str, list[tuple[int, int]]] = {}
    for image_id, label, j in entries:
        merged.setdefault(image_id, []).append((label, j))
    records = []
    for image_id, picks in merged.items():
        rec = by_id[image_id]
        idx = np.array([j for _, j in picks], dtype=np.int64)
        labels = np.array([lab for lab, _ in picks], dtype=np.int64)
        extra = copy.copy(rec.extra)
        if "difficult" in extra:
            extra["difficult"] = extra["difficult"][idx]
        records.append(DetRecord(rec.image, rec.boxes[idx], labels, rec.image_id, rec.width, rec.height, extra))
    return records


def load_kshot(
    root: str | Path,
    seed: int,
    shots: int,
    classes: list[str] | None = None,
    cap: str = "random",
    cap_seed: int = 0,
) -> DatasetIndex:
    """Build the K-shot training set of one seed.

    Args:
        root: NEU-DET folder (``ANNOTATIONS/``, ``IMAGES/``, ``fewshot_split/``).
        seed: split-file seed (1..10).
        shots: K (5, 10 or 30).
        classes: classes to load, in label order (default :data:`NEU_CLASSES`; use ``split_classes(s)`` for a DKAN
            split: base first, then novel).
        cap: ``random`` or ``first`` (see the module docstring).
        cap_seed: RandomState seed of ``cap="random"``.

    Returns:
        Detection index with at most ``shots`` boxes per class, labels in ``classes`` order.
    """
    root = Path(root)
    class_list = list(classes or NEU_CLASSES)
    if cap not in ("first", "random"):
        raise ValueError(f"cap must be 'first' or 'random', got {cap!r}")
    unknown = [c for c in class_list if c not in NEU_CLASSES]
    if unknown:
        raise ValueError(f"classes {unknown} are not NEU-DET classes {NEU_CLASSES}")
    lists = {}
    list_problems: list[Problem] = []
    for cls in class_list:
        path = kshot_file(root, seed, shots, cls)
        if not path.is_file():
            raise FileNotFoundError(f"K-shot list not found: {path}")
        entries = unique_entries(read_list_file(path), path, list_problems, lambda e: Path(e).stem)
        lists[cls] = (path, [Path(e).stem for e in entries])
    wanted = sorted({i for _, ids in lists.values() for i in ids})
    full = read_voc_ids(root, wanted, NEU_CLASSES)
    by_id = {r.image_id: r for r in full.records}
    problems: list[Problem] = [*list_problems, *full.problems]
    rng = np.random.RandomState(cap_seed)
    entries: list[tuple[str, int, int]] = []  # (image id, class label, box index) of every kept box
    for label, cls in enumerate(class_list):
        path, ids = lists[cls]
        src_label = NEU_CLASSES.index(cls)
        cands = []
        for image_id in ids:
            rec = by_id.get(image_id)
            if rec is None:
                report(problems, path, "missing_split_entry", f"image {image_id!r} not in the dataset", "entry skipped")
                continue
            cands += [(rec.image_id, label, int(j)) for j in np.flatnonzero(rec.labels == src_label)]
        if len(cands) > shots:
            pick = range(shots) if cap == "first" else sorted(rng.choice(len(cands), shots, replace=False))
            cands = [cands[i] for i in pick]
        entries += cands
    records = _merge_picks(entries, by_id)
    return DatasetIndex("detection", class_list, records, problems, root, f"seed{seed}_{shots}shot")


def read_neu_fewshot(
    root: str | Path,
    split: str = "trainval",
    classes: list[str] | None = None,
    cap: str = "random",
    cap_seed: int = 0,
    drop_empty: bool | list[str] = False,
) -> DatasetIndex:
    """Reader for DKAN-style few-shot runs on NEU-DET (``data.format: neu-fewshot``).

    Args:
        root: NEU-DET folder.
        split: ``seed{N}_{K}shot`` (e.g. ``seed1_10shot``) for a K-shot set, otherwise a VOC split (``trainval``,
            ``test``, ``all``).
        classes: the class subset and label order (e.g. a split's base classes for stage I, base + novel for stage
            II); boxes of other classes are left out (intended, not reported). Default: all six classes.
        cap: K-shot cap rule (``random`` | ``first``).
        cap_seed: seed of ``cap="random"``.
        drop_empty: drop images without boxes of ``classes``: True for every split, or a list of split names (e.g.
            ``["trainval"]`` so that stage-I training skips novel-only images while the test set stays complete, as
            MMFewShot does).
    """
    class_list = list(classes or NEU_CLASSES)
    if split.startswith("seed") and split.endswith("shot") and "_" in split:
        seed_txt, shot_txt = split.split("_", 1)
        try:
            seed, shots = int(seed_txt[4:]), int(shot_txt[:-4])
        except ValueError as err:
            raise ValueError(f"K-shot split must look like 'seed1_10shot', got {split!r}") from err
        return load_kshot(root, seed, shots, class_list, cap, cap_seed)
    drop = drop_empty if isinstance(drop_empty, bool) else split in drop_empty
    return filter_classes(read_voc(root, split, NEU_CLASSES), class_list, drop_empty=drop)
