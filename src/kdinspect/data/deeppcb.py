"""DeepPCB reader: aligned template/tested PCB image pairs with six defect types.

Layout (paths relative to ``PCBData/``): split lists ``trainval.txt`` / ``test.txt`` with lines
``groupG/G/ID.jpg groupG/G_not/ID.txt``. The ``.jpg`` name is a stem: the tested image is ``G/ID_test.jpg`` and the
defect-free template ``G/ID_temp.jpg`` (kept in ``DetRecord.extra["template"]``). Annotation lines are
``x1 y1 x2 y2 type`` separated by spaces (the upstream README says commas; both are accepted), with types
1 open, 2 short, 3 mousebite, 4 spur, 5 spurious copper, 6 pin-hole.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from kdinspect.data.common import (
    header_size,
    labelled_boxes,
    read_list_file,
    report,
    resolve_list_file,
    unique_entries,
)
from kdinspect.data.structures import DatasetIndex, DetRecord, Problem

__all__ = ["DEEPPCB_CLASSES", "read_deeppcb"]

DEEPPCB_CLASSES = ["open", "short", "mousebite", "spur", "spurious_copper", "pin_hole"]


def _parse_pcb_annotation(path: Path, problems: list[Problem]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) and 0-based type indices (N,) of one annotation file."""
    boxes, types = [], []
    for ln, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
        if not parts:
            continue
        try:
            if len(parts) != 5:
                raise ValueError(f"{len(parts)} values, expected 5 (x1 y1 x2 y2 type)")
            x1, y1, x2, y2 = (float(v) for v in parts[:4])
            t = int(parts[4])
        except ValueError as err:
            report(problems, path, "bad_annotation", f"line {ln}: {err}", "box rejected")
            continue
        if not 1 <= t <= len(DEEPPCB_CLASSES):
            report(problems, path, "unknown_class", f"line {ln}: defect type {t} not in 1..6", "box rejected")
            continue
        boxes.append([x1, y1, x2, y2])
        types.append(t - 1)
    return np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(types, dtype=np.int64)


def _pair_files(pcb: Path, list_file: Path, entry: str, problems: list[Problem]) -> tuple[Path, Path, Path] | None:
    """(tested image, template, annotation) of a split-list line, or None after recording why it is unusable."""
    parts = entry.split()
    if len(parts) != 2:
        report(problems, list_file, "bad_annotation", f"line {entry!r}: expected 'image.jpg ann.txt'", "entry skipped")
        return None
    stem = pcb / parts[0]
    image, template = stem.with_name(f"{stem.stem}_test.jpg"), stem.with_name(f"{stem.stem}_temp.jpg")
    ann = pcb / parts[1]
    if not image.is_file() and not ann.is_file():
        msg = f"entry {entry!r}: neither {image.name} nor {ann.name} exists"
        report(problems, list_file, "missing_split_entry", msg, "entry skipped")
        return None
    if not image.is_file():
        report(problems, image, "missing_image", f"listed in {list_file.name} with {ann.name}", "skipped image")
        return None
    if not ann.is_file():
        report(problems, image, "missing_annotation", f"no annotation {parts[1]}", "skipped image")
        return None
    if not template.is_file():
        msg = "template of a tested image is missing"
        report(problems, template, "missing_image", msg, "pair kept without template", "warning")
    return image, template, ann


def read_deeppcb(root: str | Path, split: str = "trainval", classes: list[str] | None = None) -> DatasetIndex:
    """Read a DeepPCB split.

    Args:
        root: the DeepPCB folder (containing ``PCBData/``) or ``PCBData`` itself.
        split: ``trainval``, ``test`` or a list-file path.
        classes: a subset/reordering of :data:`DEEPPCB_CLASSES`; other types are rejected as ``unknown_class``.

    Returns:
        Detection index of the tested images; ``extra["template"]`` is the template path (None when missing, with a
        ``missing_image`` warning) and ``extra["annotation"]`` the annotation file.
    """
    root = Path(root)
    pcb = root / "PCBData" if (root / "PCBData").is_dir() else root
    list_file = resolve_list_file(pcb, split, ["."])
    if list_file is None:
        avail = sorted(p.stem for p in pcb.glob("*.txt"))
        raise ValueError(f"{pcb}: unknown DeepPCB split {split!r}; valid: {avail} or a list-file path")
    class_list = list(classes) if classes else list(DEEPPCB_CLASSES)
    unknown = [c for c in class_list if c not in DEEPPCB_CLASSES]
    if unknown:
        raise ValueError(f"DeepPCB classes {unknown} unknown; valid: {DEEPPCB_CLASSES}")
    problems: list[Problem] = []
    records = []
    for entry in unique_entries(read_list_file(list_file), list_file, problems, lambda e: e.split()[0]):
        files = _pair_files(pcb, list_file, entry, problems)
        if files is None or (size := header_size(files[0], problems)) is None:
            continue
        image, template, ann = files
        boxes, types = _parse_pcb_annotation(ann, problems)
        objects = [(list(b), DEEPPCB_CLASSES[t]) for b, t in zip(boxes, types)]
        b, lab, _ = labelled_boxes(objects, class_list, size, ann, problems)
        extra = {"template": template if template.is_file() else None, "annotation": ann}
        records.append(DetRecord(image, b, lab, image.stem.removesuffix("_test"), size[1], size[0], extra))
    return DatasetIndex("detection", class_list, records, problems, root, split)
