"""Detection readers: Pascal VOC XML, COCO JSON and YOLO txt folders.

Each reader has the signature ``reader(root, split, classes=None, **params) -> DatasetIndex``. Bad entries never
raise: they become :class:`~kdinspect.data.structures.Problem` entries naming the file (see ``kdinspect data check``).
Labels always come from the annotations, never from file names (NEU-DET has 188 boxes whose class differs from the
image's file-name prefix).

Box conventions: records hold float xyxy pixel boxes in the original image. VOC coordinates are 1-based inclusive
pixel indices; with ``one_based=True`` (default) ``xmin``/``ymin`` are shifted by -1 (detectron2's and MMFewShot's
training convention) so that ``[x1, x2)`` covers the annotated pixels; ``xmax``/``ymax`` are kept.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from kdinspect.data.common import (
    clean_boxes,
    find_dir,
    image_files,
    natural_key,
    read_list_file,
    resolve_list_file,
)
from kdinspect.data.io import ImageReadError, read_image_size
from kdinspect.data.structures import DatasetIndex, DetRecord, Problem

__all__ = ["parse_voc_xml", "read_coco", "read_voc", "read_voc_ids", "read_yolo", "voc_splits", "yolo_classes"]

VOC_ANN_DIRS = ("ANNOTATIONS", "Annotations", "annotations")
VOC_IMG_DIRS = ("IMAGES", "JPEGImages", "images")
VOC_SPLIT_DIRS = ("splits", "ImageSets/Main", "ImageSets")


def _class_map(classes: list[str] | None, found: set[str]) -> list[str]:
    return list(classes) if classes else sorted(found)


def _header_size(path: Path, problems: list[Problem]) -> tuple[int, int] | None:
    try:
        return read_image_size(path)
    except ImageReadError as err:
        problems.append(Problem(str(path), "corrupt_image", err.reason, "error", "skipped image"))
        return None


# ----------------------------------------------------------------------------------------------------------- VOC
def parse_voc_xml(path: Path, one_based: bool = True) -> dict[str, Any]:
    """Parse one VOC annotation.

    Returns:
        ``{"filename", "width", "height", "objects": [(name, [x1, y1, x2, y2], difficult)], "bad": [messages]}``.

    Raises:
        ET.ParseError: the file is not well-formed XML.
    """
    root = ET.parse(path).getroot()
    size = root.find("size")
    width = height = 0
    if size is not None:
        try:
            width = int(float(size.findtext("width", "0")))
            height = int(float(size.findtext("height", "0")))
        except ValueError:
            width = height = 0
    objects, bad = [], []
    for i, obj in enumerate(root.findall("object")):
        name = (obj.findtext("name") or "").strip()
        bnd = obj.find("bndbox")
        try:
            if not name or bnd is None:
                raise ValueError("missing <name> or <bndbox>")
            box = [float(bnd.findtext(k, "nan")) for k in ("xmin", "ymin", "xmax", "ymax")]
            if any(np.isnan(box)):
                raise ValueError("missing coordinate")
        except ValueError as err:
            bad.append(f"object {i}: {err}")
            continue
        if one_based:
            box[0] -= 1.0
            box[1] -= 1.0
        difficult = (obj.findtext("difficult") or "0").strip() in ("1", "true")
        objects.append((name, box, difficult))
    return {
        "filename": (root.findtext("filename") or "").strip(),
        "width": width,
        "height": height,
        "objects": objects,
        "bad": bad,
    }


def _voc_layout(root: Path) -> tuple[Path, Path]:
    ann_dir = find_dir(root, VOC_ANN_DIRS)
    img_dir = find_dir(root, VOC_IMG_DIRS)
    if ann_dir is None or img_dir is None:
        raise FileNotFoundError(
            f"{root}: not a VOC folder; expected one of {list(VOC_ANN_DIRS)} and one of {list(VOC_IMG_DIRS)}"
        )
    return ann_dir, img_dir


def voc_splits(root: Path) -> list[str]:
    """Split names with a list file in a VOC folder (``splits/*.txt``, ``ImageSets/Main/*.txt``)."""
    names: list[str] = []
    for folder in VOC_SPLIT_DIRS:
        if (root / folder).is_dir():
            names += sorted(p.stem for p in (root / folder).glob("*.txt") if p.stem not in names)
    return names


def _voc_ids(root: Path, split: str, ann_dir: Path, img_dir: Path, problems: list[Problem]) -> list[str]:
    """Image ids of ``split``; records problems for list entries without annotation and unannotated images."""
    ann_ids = {p.stem for p in ann_dir.glob("*.xml")}
    if split == "all":
        for stem, img in image_files(img_dir).items():
            if stem not in ann_ids:
                problems.append(
                    Problem(str(img), "missing_annotation", f"no {ann_dir.name}/{stem}.xml", "error", "skipped image")
                )
        return sorted(ann_ids, key=natural_key)
    list_file = resolve_list_file(root, split, VOC_SPLIT_DIRS)
    if list_file is None:
        raise ValueError(f"{root}: unknown split {split!r}; valid: {['all', *voc_splits(root)]} or a list file path")
    ids = []
    for entry in read_list_file(list_file):
        stem = Path(entry.split()[0]).stem
        if stem not in ann_ids:
            problems.append(
                Problem(
                    str(list_file),
                    "missing_split_entry",
                    f"entry {entry!r} has no annotation {ann_dir.name}/{stem}.xml",
                    "error",
                    "entry skipped",
                )
            )
            continue
        ids.append(stem)
    return ids


def read_voc(
    root: str | Path, split: str = "all", classes: list[str] | None = None, one_based: bool = True
) -> DatasetIndex:
    """Read a Pascal VOC folder.

    Layouts: NEU-DET (``IMAGES/`` + ``ANNOTATIONS/`` + ``splits/<split>.txt``) and standard VOC (``JPEGImages/`` +
    ``Annotations/`` + ``ImageSets/Main/<split>.txt``). The image is found by the XML file's stem (NEU-DET's
    ``<filename>`` sometimes lacks the extension).

    Args:
        root: dataset folder.
        split: ``all`` (every XML), a split name with a list file, or a list-file path (one image id per line).
        classes: class names in label order; default: the sorted set of names found. Boxes of other names are
            rejected as ``unknown_class`` errors.
        one_based: shift ``xmin``/``ymin`` by -1 (VOC 1-based pixel indices; see the module docstring).

    Returns:
        Detection index; ``extra["difficult"]`` holds a (N,) bool array per record.
    """
    root = Path(root)
    ann_dir, img_dir = _voc_layout(root)
    problems: list[Problem] = []
    ids = _voc_ids(root, split, ann_dir, img_dir, problems)
    index = read_voc_ids(root, ids, classes, one_based)
    index.problems[:0] = problems
    index.split = split
    return index


def _parse_voc_files(
    ids: list[str], ann_dir: Path, img_dir: Path, one_based: bool, problems: list[Problem]
) -> list[tuple[str, Path, dict[str, Any]]]:
    images = image_files(img_dir)
    parsed = []
    for stem in ids:
        xml_path = ann_dir / f"{stem}.xml"
        if not xml_path.is_file():
            problems.append(
                Problem(
                    str(xml_path),
                    "missing_annotation",
                    f"no annotation for image id {stem!r}",
                    "error",
                    "skipped image",
                )
            )
            continue
        try:
            ann = parse_voc_xml(xml_path, one_based)
        except ET.ParseError as err:
            problems.append(
                Problem(str(xml_path), "bad_annotation", f"malformed XML ({err})", "error", "skipped image")
            )
            continue
        for msg in ann["bad"]:
            problems.append(Problem(str(xml_path), "bad_annotation", msg, "error", "box rejected"))
        img = images.get(stem)
        if img is None:
            problems.append(
                Problem(
                    str(xml_path), "missing_image", f"no image {img_dir.name}/{stem}.* for it", "error", "skipped image"
                )
            )
            continue
        parsed.append((stem, img, ann))
    return parsed


def read_voc_ids(
    root: str | Path, ids: list[str], classes: list[str] | None = None, one_based: bool = True
) -> DatasetIndex:
    """Read the VOC annotations of the image ids ``ids`` (see :func:`read_voc`)."""
    root = Path(root)
    ann_dir, img_dir = _voc_layout(root)
    problems: list[Problem] = []
    parsed = _parse_voc_files(ids, ann_dir, img_dir, one_based, problems)
    class_list = _class_map(classes, {name for _, _, ann in parsed for name, _, _ in ann["objects"]})
    index_of = {c: i for i, c in enumerate(class_list)}
    records = []
    for stem, img, ann in parsed:
        size = (ann["height"], ann["width"]) if ann["width"] > 0 and ann["height"] > 0 else None
        if size is None and (size := _header_size(img, problems)) is None:
            continue
        xml_path = ann_dir / f"{stem}.xml"
        boxes, labels, difficult = [], [], []
        for name, box, diff in ann["objects"]:
            if name not in index_of:
                problems.append(
                    Problem(
                        str(xml_path), "unknown_class", f"class {name!r} not in {class_list}", "error", "box rejected"
                    )
                )
                continue
            boxes.append(box)
            labels.append(index_of[name])
            difficult.append(diff)
        b, lab, keep = clean_boxes(np.array(boxes).reshape(-1, 4), np.array(labels), size, xml_path, problems)
        records.append(DetRecord(img, b, lab, stem, size[1], size[0], {"difficult": np.array(difficult, bool)[keep]}))
    return DatasetIndex("detection", class_list, records, problems, root, "")


# ---------------------------------------------------------------------------------------------------------- COCO
def coco_json_path(root: Path, split: str) -> Path | None:
    """The COCO JSON of ``split``: an explicit path, or ``annotations/<split>.json`` (also ``instances_<split>``)."""
    direct = Path(split) if Path(split).is_absolute() else root / split
    if split.endswith(".json"):
        return direct if direct.is_file() else None
    for cand in (
        root / "annotations" / f"{split}.json",
        root / "annotations" / f"instances_{split}.json",
        root / f"{split}.json",
    ):
        if cand.is_file():
            return cand
    return None


def _coco_image_dirs(root: Path, split: str, json_path: Path) -> list[Path]:
    stem = Path(split).stem.removeprefix("instances_")
    cands = [root / "images" / stem, root / "images", root / stem, root, json_path.parent]
    return [c for c in dict.fromkeys(cands) if c.is_dir()]


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
        avail = sorted(p.stem for p in (root / "annotations").glob("*.json")) if (root / "annotations").is_dir() else []
        raise ValueError(f"{root}: no COCO JSON for split {split!r}; valid: {avail} or a .json path")
    problems: list[Problem] = []
    try:
        data = json.loads(json_path.read_text())
        cats = sorted(data["categories"], key=lambda c: c["id"])
        images = data["images"]
        anns = data.get("annotations", [])
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as err:
        problems.append(
            Problem(str(json_path), "bad_annotation", f"malformed COCO JSON ({err!r})", "error", "split skipped")
        )
        return DatasetIndex("detection", list(classes or []), [], problems, root, split)
    cat_names = {c["id"]: c["name"] for c in cats}
    class_list = list(classes) if classes else [c["name"] for c in cats]
    index_of = {c: i for i, c in enumerate(class_list)}
    per_image: dict[Any, list[tuple[list[float], str]]] = {im.get("id"): [] for im in images}
    crowd = 0
    for k, ann in enumerate(anns):
        try:
            x, y, w, h = (float(v) for v in ann["bbox"])
            img_id, cat = ann["image_id"], ann["category_id"]
        except (KeyError, TypeError, ValueError) as err:
            problems.append(
                Problem(str(json_path), "bad_annotation", f"annotation {k}: {err!r}", "error", "box rejected")
            )
            continue
        if ann.get("iscrowd", 0):
            crowd += 1
            continue
        if img_id not in per_image:
            problems.append(
                Problem(
                    str(json_path),
                    "bad_annotation",
                    f"annotation {ann.get('id', k)} refers to unknown image_id {img_id!r}",
                    "error",
                    "box rejected",
                )
            )
            continue
        per_image[img_id].append(([x, y, x + w, y + h], cat_names.get(cat, f"<category_id {cat}>")))
    if crowd:
        problems.append(
            Problem(
                str(json_path),
                "crowd_annotation",
                f"{crowd} crowd annotations (iscrowd=1)",
                "warning",
                "left out of the targets",
            )
        )
    dirs = _coco_image_dirs(root, split, json_path)
    records = []
    for im in images:
        name = str(im.get("file_name", ""))
        img = next((d / name for d in dirs if (d / name).is_file()), None)
        if img is None:
            problems.append(
                Problem(
                    str(json_path),
                    "missing_image",
                    f"image {name!r} (id {im.get('id')}) not found under {[str(d) for d in dirs]}",
                    "error",
                    "skipped image",
                )
            )
            continue
        w, h = int(im.get("width") or 0), int(im.get("height") or 0)
        size = (h, w) if w > 0 and h > 0 else _header_size(img, problems)
        if size is None:
            continue
        boxes, labels = [], []
        for box, cname in per_image[im.get("id")]:
            if cname not in index_of:
                problems.append(
                    Problem(
                        str(json_path),
                        "unknown_class",
                        f"{name}: class {cname!r} not in {class_list}",
                        "error",
                        "box rejected",
                    )
                )
                continue
            boxes.append(box)
            labels.append(index_of[cname])
        b, lab, _ = clean_boxes(np.array(boxes).reshape(-1, 4), np.array(labels), size, f"{json_path}:{name}", problems)
        records.append(DetRecord(img, b, lab, str(im.get("id", Path(name).stem)), size[1], size[0]))
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


def _parse_yolo_lines(label: Path, size: tuple[int, int], n_cls: int, problems: list[Problem]):
    h, w = size
    boxes, labels = [], []
    for ln, line in enumerate(label.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 5:
                raise ValueError(f"{len(parts)} values, expected 5 (class cx cy w h)")
            cls = int(parts[0])
            cx, cy, bw, bh = (float(v) for v in parts[1:])
        except ValueError as err:
            problems.append(Problem(str(label), "bad_annotation", f"line {ln}: {err}", "error", "box rejected"))
            continue
        if not 0 <= cls < n_cls:
            problems.append(
                Problem(
                    str(label),
                    "unknown_class",
                    f"line {ln}: class index {cls} not in [0, {n_cls})",
                    "error",
                    "box rejected",
                )
            )
            continue
        boxes.append([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
        labels.append(cls)
    return np.array(boxes).reshape(-1, 4), np.array(labels, dtype=np.int64)


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
        avail = sorted(p.name for p in (root / "images").iterdir() if p.is_dir()) if (root / "images").is_dir() else []
        raise ValueError(f"{root}: unknown YOLO split {split!r}; valid: {avail}")
    class_list = list(classes) if classes else yolo_classes(root)
    if not class_list:
        raise ValueError(f"{root}: no class names (data.yaml 'names' or classes.txt); pass classes explicitly")
    problems: list[Problem] = []
    images = image_files(img_dir)
    labels = {p.stem: p for p in lab_dir.glob("*.txt")} if lab_dir.is_dir() else {}
    for stem in sorted(set(labels) - set(images), key=natural_key):
        problems.append(
            Problem(str(labels[stem]), "missing_image", f"no image {img_dir.name}/{stem}.*", "error", "labels skipped")
        )
    records = []
    for stem in sorted(images, key=natural_key):
        img = images[stem]
        size = _header_size(img, problems)
        if size is None:
            continue
        if stem not in labels:
            problems.append(
                Problem(
                    str(img),
                    "missing_annotation",
                    f"no labels/{split}/{stem}.txt",
                    "warning",
                    "used as background image",
                )
            )
            boxes, labs = np.zeros((0, 4)), np.zeros(0, dtype=np.int64)
        else:
            boxes, labs = _parse_yolo_lines(labels[stem], size, len(class_list), problems)
        b, lab, _ = clean_boxes(boxes, labs, size, labels.get(stem, img), problems)
        records.append(DetRecord(img, b, lab, stem, size[1], size[0]))
    return DatasetIndex("detection", class_list, records, problems, root, split)
