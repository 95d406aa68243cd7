"""Detection readers for COCO JSON and YOLO txt folders (Pascal VOC lives in :mod:`kdinspect.data.voc`).

Each reader has the signature ``reader(root, split, classes=None, **params) -> DatasetIndex``. Bad entries never
raise: they become :class:`~kdinspect.data.structures.Problem` entries naming the file (see ``kdinspect data check``).
Records hold float xyxy pixel boxes in the original image.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from kdinspect.data.common import (
    clean_boxes,
    header_size,
    image_files,
    labelled_boxes,
    natural_key,
    read_list_file,
    report,
)
from kdinspect.data.structures import DatasetIndex, DetRecord, Problem

__all__ = ["coco_json_path", "read_coco", "read_yolo", "yolo_classes"]


# ---------------------------------------------------------------------------------------------------------- COCO
def coco_json_path(root: Path, split: str) -> Path | None:
    """The COCO JSON of ``split``: an explicit path, or ``annotations/<split>.json`` (also ``instances_<split>``)."""
    if split.endswith(".json"):
        direct = Path(split) if Path(split).is_absolute() else root / split
        return direct if direct.is_file() else None
    cands = [root / "annotations" / f"{split}.json", root / "annotations" / f"instances_{split}.json"]
    return next((c for c in [*cands, root / f"{split}.json"] if c.is_file()), None)


def _coco_image_dirs(root: Path, split: str, json_path: Path) -> list[Path]:
    stem = Path(split).stem.removeprefix("instances_")
    cands = [root / "images" / stem, root / "images", root / stem, root, json_path.parent]
    return [c for c in dict.fromkeys(cands) if c.is_dir()]


def _coco_objects(
    data: dict[str, Any], json_path: Path, problems: list[Problem]
) -> dict[Any, list[tuple[list[float], str]]]:
    """``image id -> [(xyxy box, class name)]``; crowd annotations are counted in one warning and left out."""
    cat_names = {c["id"]: c["name"] for c in data["categories"]}
    per_image: dict[Any, list[tuple[list[float], str]]] = {im.get("id"): [] for im in data["images"]}
    crowd = 0
    for k, ann in enumerate(data.get("annotations", [])):
        try:
            x, y, w, h = (float(v) for v in ann["bbox"])
            img_id, cat = ann["image_id"], ann["category_id"]
        except (KeyError, TypeError, ValueError) as err:
            report(problems, json_path, "bad_annotation", f"annotation {k}: {err!r}", "box rejected")
            continue
        if ann.get("iscrowd", 0):
            crowd += 1
        elif img_id not in per_image:
            msg = f"annotation {ann.get('id', k)} refers to unknown image_id {img_id!r}"
            report(problems, json_path, "bad_annotation", msg, "box rejected")
        else:
            per_image[img_id].append(([x, y, x + w, y + h], cat_names.get(cat, f"<category_id {cat}>")))
    if crowd:
        msg = f"{crowd} crowd annotations (iscrowd=1)"
        report(problems, json_path, "crowd_annotation", msg, "left out of the targets", "warning")
    return per_image


def read_coco(root: str | Path, split: str = "train", classes: list[str] | None = None) -> DatasetIndex:
    """Read a COCO-style detection JSON (bbox ``[x, y, w, h]`` -> xyxy).

    Args:
        root: dataset folder.
        split: split name (``<root>/annotations/<split>.json``) or a JSON path (absolute or relative to root).
        classes: class names in label order; default: categories sorted by id. Categories not in the list are
            rejected as ``unknown_class``.

    Images are looked up under ``images/<split>/``, ``images/``, ``<split>/``, the root and the JSON's folder.
    Crowd annotations (``iscrowd=1``) are not training targets: they are left out and counted in one warning.
    """
    root = Path(root)
    json_path = coco_json_path(root, split)
    if json_path is None:
        avail = sorted(p.stem for p in (root / "annotations").glob("*.json"))
        raise ValueError(f"{root}: no COCO JSON for split {split!r}; valid: {avail} or a .json path")
    problems: list[Problem] = []
    try:
        data = json.loads(json_path.read_text())
        class_list = (
            list(classes) if classes else [c["name"] for c in sorted(data["categories"], key=lambda c: c["id"])]
        )
        per_image = _coco_objects(data, json_path, problems)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
        report(problems, json_path, "bad_annotation", f"malformed COCO JSON ({err!r})", "split skipped")
        return DatasetIndex("detection", list(classes or []), [], problems, root, split)
    dirs = _coco_image_dirs(root, split, json_path)
    records = []
    for im in data["images"]:
        name = str(im.get("file_name", ""))
        img = next((d / name for d in dirs if (d / name).is_file()), None)
        if img is None:
            msg = f"image {name!r} (id {im.get('id')}) not found under {[str(d) for d in dirs]}"
            report(problems, json_path, "missing_image", msg, "skipped image")
            continue
        w, h = int(im.get("width") or 0), int(im.get("height") or 0)
        size = (h, w) if w > 0 and h > 0 else header_size(img, problems)
        if size is None:
            continue
        boxes, labels, _ = labelled_boxes(per_image[im.get("id")], class_list, size, f"{json_path} ({name})", problems)
        records.append(DetRecord(img, boxes, labels, str(im.get("id", Path(name).stem)), size[1], size[0]))
    return DatasetIndex("detection", class_list, records, problems, root, split)


# ---------------------------------------------------------------------------------------------------------- YOLO
def yolo_classes(root: Path) -> list[str]:
    """Class names from ``data.yaml`` (``names`` list or ``{index: name}`` mapping) or ``classes.txt``."""
    for name in ("data.yaml", "dataset.yaml", "data.yml"):
        if (root / name).is_file():
            names = (yaml.safe_load((root / name).read_text()) or {}).get("names")
            if isinstance(names, dict):
                return [str(names[k]) for k in sorted(names)]
            if isinstance(names, list):
                return [str(n) for n in names]
    if (root / "classes.txt").is_file():
        return read_list_file(root / "classes.txt")
    return []


def _parse_yolo_lines(
    label: Path, size: tuple[int, int], n_cls: int, problems: list[Problem]
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) xyxy pixels and labels (N,) of one label file."""
    h, w = size
    boxes, labels = [], []
    for ln, line in enumerate(label.read_text(errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) != 5:
                raise ValueError(f"{len(parts)} values, expected 5 (class cx cy w h)")
            cls = int(parts[0])
            cx, cy, bw, bh = (float(v) for v in parts[1:])
        except ValueError as err:
            report(problems, label, "bad_annotation", f"line {ln}: {err}", "box rejected")
            continue
        if not 0 <= cls < n_cls:
            report(
                problems, label, "unknown_class", f"line {ln}: class index {cls} not in [0, {n_cls})", "box rejected"
            )
            continue
        boxes.append([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
        labels.append(cls)
    return np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(labels, dtype=np.int64)


def read_yolo(root: str | Path, split: str = "train", classes: list[str] | None = None) -> DatasetIndex:
    """Read a YOLO txt folder: ``images/<split>/*`` + ``labels/<split>/<stem>.txt`` (``class cx cy w h``, normalised).

    Args:
        root: dataset folder with ``data.yaml`` (``names``) or ``classes.txt``.
        split: sub-folder name under ``images/`` and ``labels/``.
        classes: class names by index; default: from ``data.yaml``/``classes.txt``.

    An image without a label file is kept as a background image and reported as a ``missing_annotation`` warning
    (Ultralytics' convention); a label file without an image is a ``missing_image`` error.
    """
    root = Path(root)
    img_dir, lab_dir = root / "images" / split, root / "labels" / split
    if not img_dir.is_dir():
        avail = sorted(p.name for p in (root / "images").glob("*") if p.is_dir())
        raise ValueError(f"{root}: unknown YOLO split {split!r}; valid: {avail}")
    class_list = list(classes) if classes else yolo_classes(root)
    if not class_list:
        raise ValueError(f"{root}: no class names (data.yaml 'names' or classes.txt); pass classes explicitly")
    problems: list[Problem] = []
    images = image_files(img_dir)
    labels = {p.stem: p for p in lab_dir.glob("*.txt")}
    for stem in sorted(set(labels) - set(images), key=natural_key):
        report(problems, labels[stem], "missing_image", f"no image {img_dir.name}/{stem}.*", "labels skipped")
    records = []
    for stem in sorted(images, key=natural_key):
        img = images[stem]
        size = header_size(img, problems)
        if size is None:
            continue
        if stem in labels:
            boxes, labs = _parse_yolo_lines(labels[stem], size, len(class_list), problems)
        else:
            msg = f"no labels/{split}/{stem}.txt"
            report(problems, img, "missing_annotation", msg, "used as background image", "warning")
            boxes, labs = np.zeros((0, 4)), np.zeros(0, dtype=np.int64)
        b, lab, _ = clean_boxes(boxes, labs, size, labels.get(stem, img), problems)
        records.append(DetRecord(img, b, lab, stem, size[1], size[0]))
    return DatasetIndex("detection", class_list, records, problems, root, split)
