"""Pascal VOC XML reader (NEU-DET and standard VOC layouts).

Labels always come from the XML ``<name>``, never from file names (NEU-DET has 188 boxes whose class differs from the
image's file-name prefix). VOC coordinates are 1-based inclusive pixel indices; with ``one_based=True`` (default)
``xmin``/``ymin`` are shifted by -1 (detectron2's and MMFewShot's training convention) so that ``[x1, x2)`` covers
the annotated pixels; ``xmax``/``ymax`` are kept.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from kdinspect.data.common import (
    find_dir,
    header_size,
    image_files,
    labelled_boxes,
    natural_key,
    read_list_file,
    report,
    resolve_list_file,
    unique_entries,
)
from kdinspect.data.structures import DatasetIndex, DetRecord, Problem

__all__ = ["VOC_ANN_DIRS", "VOC_IMG_DIRS", "parse_voc_xml", "read_voc", "read_voc_ids", "voc_splits"]

VOC_ANN_DIRS = ("ANNOTATIONS", "Annotations", "annotations")
VOC_IMG_DIRS = ("IMAGES", "JPEGImages", "images")
VOC_SPLIT_DIRS = ("splits", "ImageSets/Main", "ImageSets")


def parse_voc_xml(path: Path, one_based: bool = True) -> dict[str, Any]:
    """Parse one VOC annotation.

    Returns:
        ``{"filename", "width", "height", "objects": [([x1, y1, x2, y2], name)], "difficult": [bool],
        "bad": [messages]}``.

    Raises:
        ET.ParseError: the file is not well-formed XML.
    """
    root = ET.parse(path).getroot()
    size = root.find("size")
    try:
        width = int(float(size.findtext("width", "0"))) if size is not None else 0
        height = int(float(size.findtext("height", "0"))) if size is not None else 0
    except ValueError:
        width = height = 0
    objects, difficult, bad = [], [], []
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
        objects.append((box, name))
        difficult.append((obj.findtext("difficult") or "0").strip() in ("1", "true"))
    filename = (root.findtext("filename") or "").strip()
    return {
        "filename": filename,
        "width": width,
        "height": height,
        "objects": objects,
        "difficult": difficult,
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
                report(problems, img, "missing_annotation", f"no {ann_dir.name}/{stem}.xml", "skipped image")
        return sorted(ann_ids, key=natural_key)
    list_file = resolve_list_file(root, split, VOC_SPLIT_DIRS)
    if list_file is None:
        raise ValueError(f"{root}: unknown split {split!r}; valid: {['all', *voc_splits(root)]} or a list file path")
    ids = []
    entries = unique_entries(read_list_file(list_file), list_file, problems, lambda e: Path(e.split()[0]).stem)
    for entry in entries:
        stem = Path(entry.split()[0]).stem
        if stem in ann_ids:
            ids.append(stem)
        else:
            msg = f"entry {entry!r} has no annotation {ann_dir.name}/{stem}.xml"
            report(problems, list_file, "missing_split_entry", msg, "entry skipped")
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
        Detection index; ``extra["difficult"]`` holds a (N,) bool array per record, ``extra["annotation"]`` the XML.
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
            report(problems, xml_path, "missing_annotation", f"no annotation for image id {stem!r}", "skipped image")
            continue
        try:
            ann = parse_voc_xml(xml_path, one_based)
        except ET.ParseError as err:
            report(problems, xml_path, "bad_annotation", f"malformed XML ({err})", "skipped image")
            continue
        for msg in ann["bad"]:
            report(problems, xml_path, "bad_annotation", msg, "box rejected")
        img = images.get(stem)
        if img is None:
            report(problems, xml_path, "missing_image", f"no image {img_dir.name}/{stem}.* for it", "skipped image")
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
    class_list = list(classes) if classes else sorted({n for _, _, a in parsed for _, n in a["objects"]})
    records = []
    for stem, img, ann in parsed:
        size = (ann["height"], ann["width"]) if ann["width"] > 0 and ann["height"] > 0 else header_size(img, problems)
        if size is None:
            continue
        xml_path = ann_dir / f"{stem}.xml"
        boxes, labels, keep = labelled_boxes(ann["objects"], class_list, size, xml_path, problems)
        extra = {"difficult": np.array(ann["difficult"], dtype=bool)[keep], "annotation": xml_path}
        records.append(DetRecord(img, boxes, labels, stem, size[1], size[0], extra))
    return DatasetIndex("detection", class_list, records, problems, root, "")
