"""Helpers shared by the dataset readers: split lists, image lookup and box validation."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import numpy as np

from kdinspect.data.io import IMAGE_EXTENSIONS, ImageReadError, read_image_size
from kdinspect.data.structures import Problem

__all__ = [
    "CLIP_TOLERANCE",
    "clean_boxes",
    "find_dir",
    "header_size",
    "image_files",
    "labelled_boxes",
    "natural_key",
    "read_list_file",
    "report",
    "resolve_list_file",
    "unique_entries",
]

CLIP_TOLERANCE = 1.0  # boxes that leave the frame by at most this many pixels are clipped without a warning


def report(
    problems: list[Problem],
    path: Path | str,
    kind: str,
    message: str,
    action: str = "",
    severity: Literal["error", "warning"] = "error",
) -> None:
    """Append a :class:`Problem` (``severity`` ``error`` unless given) to ``problems``."""
    problems.append(Problem(str(path), kind, message, severity, action))


def natural_key(text: str) -> list[int | str]:
    """Sort key that orders ``img_2`` before ``img_10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def find_dir(root: Path, names: Iterable[str]) -> Path | None:
    """First existing sub-directory of ``root`` among ``names``."""
    for name in names:
        if (root / name).is_dir():
            return root / name
    return None


def header_size(path: Path, problems: list[Problem]) -> tuple[int, int] | None:
    """(H, W) from the image header, or None after recording a ``corrupt_image`` problem."""
    try:
        return read_image_size(path)
    except ImageReadError as err:
        report(problems, path, "corrupt_image", err.reason, "skipped image")
        return None


def image_files(folder: Path) -> dict[str, Path]:
    """Map file stem -> image path for the images directly inside ``folder`` (first extension in
    :data:`IMAGE_EXTENSIONS` order wins when a stem has several)."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    rank = {ext: i for i, ext in enumerate(IMAGE_EXTENSIONS)}
    for p in folder.iterdir():
        ext = p.suffix.lower()
        if ext in rank and p.is_file():
            old = found.get(p.stem)
            if old is None or rank[ext] < rank[old.suffix.lower()]:
                found[p.stem] = p
    return found


def resolve_list_file(root: Path, split: str, folders: Iterable[str]) -> Path | None:
    """Find the list file of ``split``: an existing path (absolute or relative to ``root``), else
    ``<root>/<folder>/<split>.txt`` for each folder in ``folders``."""
    direct = Path(split) if Path(split).is_absolute() else root / split
    if direct.is_file():
        return direct
    for folder in folders:
        cand = root / folder / f"{split}.txt"
        if cand.is_file():
            return cand
    return None


def read_list_file(path: Path) -> list[str]:
    """Non-empty, stripped lines of a split list (``#`` starts a comment line)."""
    lines = path.read_text(errors="replace").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def unique_entries(
    entries: list[str], list_file: Path | str, problems: list[Problem], key: Callable[[str], str] = str.strip
) -> list[str]:
    """``entries`` of a split list without repeats: the first entry of each ``key`` is kept (list order), and each
    repeated key is one ``duplicate_split_entry`` warning naming the entries (``listed once``).

    A repeated line would be trained (and evaluated) twice; it is nearly always a copy slip, so it is read once and
    reported rather than refused. Oversampling belongs to the sampler, not to the split list.
    """
    groups: dict[str, list[str]] = {}
    for entry in entries:
        groups.setdefault(key(entry), []).append(entry)
    for k, same in groups.items():
        if len(same) > 1:
            msg = f"image {k!r} is listed {len(same)} times ({', '.join(repr(e) for e in same)})"
            report(problems, list_file, "duplicate_split_entry", msg, "listed once (first kept)", "warning")
    return [same[0] for same in groups.values()]


def clean_boxes(
    boxes: np.ndarray,
    labels: np.ndarray,
    size: tuple[int, int] | None,
    path: Path | str,
    problems: list[Problem],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate boxes of one image, clipping or rejecting bad ones and recording a :class:`Problem` for each.

    Rules: a non-finite box or one with ``x2 <= x1`` or ``y2 <= y1`` is rejected (``zero_area_box``, error); a box
    that leaves the frame by more than :data:`CLIP_TOLERANCE` px is clipped (``box_outside_image``, warning), and
    rejected (error) if nothing is left after clipping; smaller overshoots (rounding) are clipped silently.

    Args:
        boxes: (N, 4) xyxy pixels.
        labels: (N,) int64.
        size: (H, W) of the image, or None when unknown (no clipping).
        path: annotation file named in problems.
        problems: list the problems are appended to.

    Returns:
        The kept boxes (M, 4) float32, their labels (M,) int64 and the (N,) bool mask of kept input boxes.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    keep = np.ones(len(boxes), dtype=bool)
    out = boxes.copy()
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        desc = f"box {i} [{x1:g}, {y1:g}, {x2:g}, {y2:g}]"
        if not np.isfinite(boxes[i]).all() or x2 <= x1 or y2 <= y1:
            report(problems, path, "zero_area_box", f"{desc} has zero or negative area", "box rejected")
            keep[i] = False
            continue
        if size is None:
            continue
        h, w = size
        clipped = np.array([min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h)])
        overshoot = np.abs(clipped - boxes[i]).max()
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            report(problems, path, "box_outside_image", f"{desc} lies outside the {w}x{h} image", "box rejected")
            keep[i] = False
        elif overshoot > CLIP_TOLERANCE:
            msg = f"{desc} extends {overshoot:g} px outside the {w}x{h} image"
            report(problems, path, "box_outside_image", msg, "box clipped", "warning")
        out[i] = clipped
    return out[keep].astype(np.float32), labels[keep], keep


def labelled_boxes(
    objects: list[tuple[list[float], str]],
    classes: list[str],
    size: tuple[int, int] | None,
    path: Path | str,
    problems: list[Problem],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map ``(box, class name)`` pairs to label indices, rejecting names not in ``classes`` (``unknown_class``), then
    validate the boxes with :func:`clean_boxes`.

    Returns:
        boxes (M, 4) float32, labels (M,) int64, and the (N,) bool mask of the kept input objects.
    """
    index_of = {c: i for i, c in enumerate(classes)}
    known = np.array([name in index_of for _, name in objects], dtype=bool)
    for _, name in (o for o, k in zip(objects, known) if not k):
        report(problems, path, "unknown_class", f"class {name!r} not in {classes}", "box rejected")
    boxes = np.array([b for (b, _), k in zip(objects, known) if k], dtype=np.float64).reshape(-1, 4)
    labels = np.array([index_of[n] for (_, n), k in zip(objects, known) if k], dtype=np.int64)
    b, lab, keep = clean_boxes(boxes, labels, size, path, problems)
    mask = known.copy()
    mask[known] = keep
    return b, lab, mask
