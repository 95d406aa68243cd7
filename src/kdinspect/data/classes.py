"""One class list per dataset: how it is chosen, how a split is mapped onto it, and which classes look unexpected.

Readers build the class list of the split they read (VOC: the sorted names found in it) unless they are given one.
Training, the checkpoint and evaluation must use ONE list for every split, so :mod:`kdinspect.data.build` and
``kdinspect data check`` resolve it here:

- ``data.classes`` (``--classes``) when set: a box of another name is an ``unknown_class`` error naming its file, and
  the box is rejected (never relabelled);
- else the union over the splits (:func:`union_classes`): the sorted union when every split's list is sorted (readers
  that take the names from the data, e.g. VOC), otherwise the lists in split order with new names appended (a COCO
  category order, a ``data.yaml`` ``names`` list);
- a checkpoint is evaluated with the list stored in it: :func:`map_classes` maps each box by name, and a box whose
  class the model does not know is an ``unknown_class`` error (box rejected, counted per class and named).

:func:`unexpected_classes` flags classes that look like a slip (a misspelt name becomes its own class in the union):
a class with boxes in only one of several splits, or with fewer boxes than :data:`RARE_FRACTION` of the most
frequent class.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from kdinspect.data.structures import DatasetIndex, DetRecord, Problem

__all__ = ["RARE_FRACTION", "box_counts", "map_classes", "record_file", "unexpected_classes", "union_classes"]

RARE_FRACTION = 0.01  # a class with fewer boxes than this fraction of the most frequent class's is "unexpected"


def union_classes(lists: Iterable[Sequence[str]]) -> list[str]:
    """One class list from the per-split lists: sorted when every list is sorted, else first-seen order."""
    lists = [list(x) for x in lists]
    if all(x == sorted(x) for x in lists):
        return sorted({c for x in lists for c in x})
    return list(dict.fromkeys(c for x in lists for c in x))


def record_file(rec: DetRecord) -> Path:
    """The annotation file of a record where the reader keeps it (``extra["annotation"]``), else its image."""
    return Path(rec.extra.get("annotation") or rec.image)


def map_classes(index: DatasetIndex, classes: Sequence[str], owner: str = "the class list") -> DatasetIndex:
    """Map a detection index onto ``classes`` by name.

    Boxes of a name not in ``classes`` are rejected: one ``unknown_class`` error per file and class, with the count
    and ``owner`` in the message (``class 'x' (2 boxes) is unknown to the model ...``). Segmentation indexes and
    indexes already on ``classes`` are returned unchanged.

    Returns:
        A new index (records copied where labels change; the input is unchanged).
    """
    classes = list(classes)
    if index.task != "detection" or list(index.classes) == classes:
        return index
    pos = {c: i for i, c in enumerate(classes)}
    remap = np.array([pos.get(c, -1) for c in index.classes], dtype=np.int64)
    problems = list(index.problems)
    records = []
    for rec in index.records:
        labels = remap[rec.labels] if len(rec.labels) else rec.labels.astype(np.int64)
        keep = labels >= 0
        extra = rec.extra
        if not keep.all():
            for name, n in sorted(Counter(index.classes[int(k)] for k in rec.labels[~keep]).items()):
                msg = f"class {name!r} ({n} box{'es' if n > 1 else ''}) is unknown to {owner} {classes}"
                problems.append(Problem(str(record_file(rec)), "unknown_class", msg, "error", "box rejected"))
            extra = {
                k: v[keep] if isinstance(v, np.ndarray) and v.shape[:1] == keep.shape else v for k, v in extra.items()
            }
        records.append(DetRecord(rec.image, rec.boxes[keep], labels[keep], rec.image_id, rec.width, rec.height, extra))
    return DatasetIndex(index.task, classes, records, problems, index.root, index.split)


def box_counts(index: DatasetIndex) -> Counter[str]:
    """Boxes per class name of a detection index."""
    counts: Counter[str] = Counter()
    for rec in index.records:
        counts.update(index.classes[int(k)] for k in rec.labels)
    return counts


def _files_of(indexes: dict[str, DatasetIndex], name: str, limit: int = 5) -> list[str]:
    files: list[str] = []
    for idx in indexes.values():
        if name not in idx.classes:
            continue
        k = idx.classes.index(name)
        for rec in idx.records:
            if (rec.labels == k).any() and str(record_file(rec)) not in files:
                files.append(str(record_file(rec)))
                if len(files) >= limit:
                    return files
    return files


def unexpected_classes(indexes: dict[str, DatasetIndex], classes: Sequence[str], given: bool) -> list[Problem]:
    """Warnings for classes that look like a slip (each names the first file holding the class).

    A class is *unexpected* when it has boxes in only one of two or more splits, when it has fewer boxes than
    :data:`RARE_FRACTION` of the most frequent class, or (``given``: the list came from the user) when it has no box.

    Args:
        indexes: split name -> detection index, all on ``classes``.
        classes: the dataset's class list.
        given: whether ``classes`` was given (``data.classes`` / ``--classes``) rather than taken from the data.
    """
    per_split = {s: box_counts(i) for s, i in indexes.items()}
    total: Counter[str] = sum(per_split.values(), Counter())
    top_name, top = max(total.items(), key=lambda kv: kv[1], default=("", 0))
    root = next((str(i.root) for i in indexes.values() if i.root is not None), "")
    problems = []
    for name in classes:
        n = total[name]
        where = [s for s, c in per_split.items() if c[name] > 0]
        reasons = []
        if n == 0:
            if given:
                reasons.append("has no box in " + ("any checked split" if len(per_split) > 1 else "the split"))
        elif len(per_split) > 1 and len(where) == 1:
            reasons.append(f"appears only in the {where[0]} split")
        if 0 < n < RARE_FRACTION * top:
            reasons.append(
                f"has fewer than {RARE_FRACTION:.0%} of the boxes of the most frequent class {top_name!r} ({top})"
            )
        if not reasons:
            continue
        files = _files_of(indexes, name)
        shown = f"; in {', '.join(Path(f).name for f in files)}{' ...' if len(files) >= 5 else ''}" if files else ""
        msg = f"class {name!r} ({n} box{'' if n == 1 else 'es'}) {' and '.join(reasons)}{shown}"
        action = "kept in the class list" if given else "kept as its own class (a misspelt name?)"
        problems.append(Problem(files[0] if files else root, "unexpected_class", msg, "warning", action))
    return problems
