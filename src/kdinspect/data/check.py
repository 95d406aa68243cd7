"""``kdinspect data check``: find every problem in a dataset folder before training on it.

:func:`check_dataset` reads each split with the format's reader (annotation problems: malformed files, unknown
classes, boxes outside the image or of zero area, missing images/annotations/masks, split entries that do not exist
or are listed twice), maps every split onto one class list and flags classes that look like a slip
(``unexpected_class``), and, with ``decode=True``, fully decodes every image, template and mask (corrupt or truncated
files, mask/image size mismatches, mask values other than {0, 255}, annotation sizes that disagree with the image).
It reports per-split and per-class counts and the distinct image sizes.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kdinspect.data.classes import map_classes, unexpected_classes, union_classes
from kdinspect.data.common import find_dir
from kdinspect.data.io import ImageReadError, load_image, load_mask_checked, read_image_size
from kdinspect.data.references import attach_references
from kdinspect.data.structures import DatasetIndex, DetRecord, Problem, SegRecord
from kdinspect.data.voc import VOC_ANN_DIRS, VOC_IMG_DIRS, voc_splits

__all__ = ["CheckReport", "check_dataset", "default_splits", "detect_format"]

_STANDARD_SPLITS = ("train", "trainval", "val", "test")


@dataclass
class CheckReport:
    """Result of :func:`check_dataset`.

    Attributes:
        root: the dataset folder.
        format: reader name used.
        task: ``detection`` or ``segmentation``.
        classes: class names.
        splits: per split: ``images``, ``boxes`` (detection) or ``defect_images``/``defect_pixels`` (segmentation),
            and ``classes`` ``{name: {"images": n, "boxes": m}}``.
        total: the same counts over the union of the splits (each image counted once).
        sizes: distinct image sizes ``"WxH"`` -> number of images.
        problems: every problem found, each naming its file.
        decoded: whether pixel data was decoded.
        seconds: wall time of the check.
    """

    root: str
    format: str
    task: str
    classes: list[str]
    splits: dict[str, dict[str, Any]]
    total: dict[str, Any]
    sizes: dict[str, int]
    problems: list[Problem] = field(default_factory=list)
    decoded: bool = True
    seconds: float = 0.0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when no error was found (warnings allowed)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (``ok``, counts, sizes and every problem)."""
        out = asdict(self)
        out["ok"] = self.ok
        out["n_errors"], out["n_warnings"] = len(self.errors), len(self.warnings)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        """A readable report: split table, class table, image sizes, problems grouped by kind."""
        det = self.task == "detection"
        lines = [f"dataset {self.root}", f"format {self.format} ({self.task}), {len(self.classes)} classes", ""]
        head = ("split", "images", "boxes") if det else ("split", "images", "with defect", "defect px %")
        rows = [(name, *_count_cells(c, det)) for name, c in [*self.splits.items(), ("total", self.total)]]
        lines += [*_table(head, rows), ""]
        per = {s: c.get("classes", {}) for s, c in self.splits.items()} if len(self.splits) > 1 else {}
        crow = [
            (c, str(v["images"]), str(v["boxes"]), *(str(p.get(c, {}).get("boxes", 0)) for p in per.values()))
            for c, v in self.total.get("classes", {}).items()
        ]
        if det:
            lines += [*_table(("class", "images", "boxes", *(f"{s} boxes" for s in per)), crow), ""]
        sizes = ", ".join(f"{s}: {n}" for s, n in sorted(self.sizes.items(), key=lambda kv: -kv[1]))
        src = "decoded" if self.decoded else "from annotations/headers"
        lines += [f"image sizes (W x H, {src}): {sizes or '-'}", ""]
        kinds = Counter((p.severity, p.kind) for p in self.problems)
        lines.append(f"problems: {len(self.errors)} error(s), {len(self.warnings)} warning(s)")
        lines += [f"  {n:6d} {sev} {kind}" for (sev, kind), n in sorted(kinds.items())]
        lines += [f"  {p}" for p in sorted(self.problems, key=lambda p: (p.severity, p.kind, p.path))]
        lines += ["", f"{'OK' if self.ok else 'FAILED'} ({self.seconds:.1f} s)"]
        return "\n".join(lines)


def _count_cells(c: dict[str, Any], det: bool) -> tuple[str, ...]:
    if det:
        return str(c["images"]), str(c["boxes"])
    return str(c["images"]), str(c.get("defect_images", "-")), c.get("defect_percent", "-")


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{widths[0]}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*head)] + [fmt.format(*r) for r in rows]


# ----------------------------------------------------------------------------------------------- format detection
def detect_format(root: str | Path) -> str:
    """Guess the reader of a dataset folder from its layout.

    Raises:
        ValueError: no known layout (the message lists what was looked for).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    marker = root / "synthetic.json"
    if marker.is_file():
        info = json.loads(marker.read_text())
        return info.get("fmt", "voc") if info.get("kind") == "detection" else "masks"
    ann_dir = find_dir(root, VOC_ANN_DIRS)
    checks = [
        ("deeppcb", (root / "PCBData").is_dir() or any(root.glob("group*/*_not"))),
        ("crackforest", (root / "image").is_dir() and ((root / "groundTruth").is_dir() or (root / "seg").is_dir())),
        ("deepcrack", any(root.glob("*_img")) and any(root.glob("*_lab"))),
        ("voc", ann_dir is not None and find_dir(root, VOC_IMG_DIRS) is not None and any(ann_dir.glob("*.xml"))),
        ("coco", any((root / "annotations").glob("*.json"))),
        ("yolo", (root / "labels").is_dir() and (root / "images").is_dir()),
        ("masks", (root / "images").is_dir() and (root / "masks").is_dir()),
    ]
    for name, hit in checks:
        if hit:
            return name
    raise ValueError(
        f"{root}: cannot tell the dataset format; looked for PCBData/ (deeppcb), image/+groundTruth/ (crackforest), "
        "*_img/+*_lab/ (deepcrack), Annotations/*.xml (voc), annotations/*.json (coco), images/+labels/ (yolo), "
        "images/+masks/ (masks); pass the format explicitly"
    )


def default_splits(root: str | Path, fmt: str) -> list[str]:
    """The splits checked when none are given: every split the folder defines (``all`` where there are none)."""
    root = Path(root)
    if fmt in ("voc", "neu-fewshot"):
        names = voc_splits(root)
        standard = [n for n in names if n in _STANDARD_SPLITS]
        return standard or names or ["all"]
    if fmt == "coco":
        return sorted(p.stem for p in (root / "annotations").glob("*.json"))
    if fmt in ("yolo", "masks"):
        sub = sorted(p.name for p in (root / "images").iterdir() if p.is_dir()) if (root / "images").is_dir() else []
        return sub or ["all"]
    if fmt == "deeppcb":
        pcb = root / "PCBData" if (root / "PCBData").is_dir() else root
        return sorted(p.stem for p in pcb.glob("*.txt"))
    if fmt == "deepcrack":
        return sorted(p.name.removesuffix("_img") for p in root.glob("*_img") if p.is_dir())
    if fmt in ("crackforest", "synthetic-det", "synthetic-seg"):
        return ["train", "test"] if fmt == "crackforest" else ["train", "val"]
    return ["all"]


# -------------------------------------------------------------------------------------------------------- counting
def _det_counts(records: list[DetRecord], classes: list[str]) -> dict[str, Any]:
    per = {c: {"images": 0, "boxes": 0} for c in classes}
    for r in records:
        counts = np.bincount(r.labels, minlength=len(classes)) if len(r.labels) else np.zeros(len(classes), int)
        for c, n in zip(classes, counts):
            per[c]["boxes"] += int(n)
            per[c]["images"] += int(n > 0)
    return {"images": len(records), "boxes": sum(len(r.labels) for r in records), "classes": per}


def _seg_counts(records: list[SegRecord], stats: dict[str, tuple[int, int]]) -> dict[str, Any]:
    known = [stats[str(r.image)] for r in records if str(r.image) in stats]
    out: dict[str, Any] = {"images": len(records)}
    if known:
        out["defect_images"] = sum(1 for px, _ in known if px > 0)
        out["defect_percent"] = f"{100 * sum(px for px, _ in known) / max(1, sum(n for _, n in known)):.2f}"
    return out


# -------------------------------------------------------------------------------------------------------- decoding
# what inspecting one record gives: (H, W) or None when unreadable, problems, (defect pixels, pixels) or None
Inspection = tuple[tuple[int, int] | None, list[Problem], tuple[int, int] | None]
_TRAINING = "skipped during training"


def _decode_det(rec: DetRecord) -> Inspection:
    problems = []
    size = None
    try:
        h, w = load_image(rec.image).shape[:2]
        size = (h, w)
        if rec.width and rec.height and (rec.width, rec.height) != (w, h):
            msg = f"annotation says {rec.width}x{rec.height}, image is {w}x{h}; boxes were checked against the former"
            problems.append(Problem(str(rec.image), "size_mismatch", msg, "warning"))
    except ImageReadError as err:
        problems.append(Problem(err.path, "corrupt_image", err.reason, "error", _TRAINING))
    for key in dict.fromkeys(k for k in ("template", "reference") if rec.extra.get(k) is not None):
        try:
            load_image(rec.extra[key])
        except ImageReadError as err:
            problems.append(Problem(err.path, "corrupt_image", f"{key}: {err.reason}", "error"))
        if key == "reference" and rec.extra.get("template") == rec.extra["reference"]:
            break  # DeepPCB: the template is the reference, decoded once
    return size, problems, None


def _mismatch(rec: SegRecord, msize: tuple[int, int], size: tuple[int, int]) -> Problem:
    msg = f"mask is {msize[1]}x{msize[0]}, image {rec.image.name} is {size[1]}x{size[0]}"
    return Problem(str(rec.mask), "mask_size_mismatch", msg, "error", _TRAINING)


def _decode_seg(rec: SegRecord) -> Inspection:
    try:
        size = load_image(rec.image).shape[:2]
    except ImageReadError as err:
        return None, [Problem(err.path, "corrupt_image", err.reason, "error", _TRAINING)], None
    if rec.mask is None:
        return size, [], None
    try:
        mask, note = load_mask_checked(rec.mask, rec.mask_format, rec.extra.get("extra_labels", "background"))
    except ImageReadError as err:
        return size, [Problem(err.path, "corrupt_mask", err.reason, "error", _TRAINING)], None
    problems = [Problem(str(rec.mask), "mask_values", note[0], "warning", note[1])] if note else []
    if mask.shape != size:
        return size, [*problems, _mismatch(rec, mask.shape, size)], None
    return size, problems, (int(mask.sum()), mask.size)


def _header_seg(rec: SegRecord) -> Inspection:
    try:
        size = read_image_size(rec.image)
        if rec.mask is not None and rec.mask_format == "png":
            msize = read_image_size(rec.mask)
            if msize != size:
                return size, [_mismatch(rec, msize, size)], None
    except ImageReadError as err:
        kind = "corrupt_image" if err.path == str(rec.image) else "corrupt_mask"
        return None, [Problem(err.path, kind, err.reason, "error", _TRAINING)], None
    return size, [], None


def _inspect(
    records: list[Any], task: str, decode: bool, workers: int
) -> tuple[dict[str, tuple[int, int]], list[Problem], dict[str, tuple[int, int]]]:
    """Sizes, problems and (segmentation) defect pixel stats of unique records, decoded in a thread pool."""
    if task == "detection" and not decode:
        return {str(r.image): (r.height, r.width) for r in records}, [], {}
    fn = (_decode_det if task == "detection" else _decode_seg) if decode else _header_seg
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results: list[Inspection] = list(pool.map(fn, records))
    sizes: dict[str, tuple[int, int]] = {}
    problems: list[Problem] = []
    stats: dict[str, tuple[int, int]] = {}
    for rec, (size, probs, stat) in zip(records, results):
        if size is not None:
            sizes[str(rec.image)] = size
        problems += probs
        if stat is not None:
            stats[str(rec.image)] = stat
    return sizes, problems, stats


# ------------------------------------------------------------------------------------------------------------ main
def _read_splits(root: Path, fmt: str, splits: list[str], classes, params) -> tuple[dict[str, DatasetIndex], list]:
    from kdinspect.data import DATASETS

    if fmt not in DATASETS:
        raise KeyError(f"unknown format {fmt!r}; valid: {sorted(DATASETS)}")
    ref = params.pop("reference", "")
    ref = "auto" if ref is True else str(ref or "")
    params.pop("align", None)  # registration happens when loading; nothing to check here
    params.pop("reference_perturb", None)
    raw = {split: DATASETS[fmt](root, split, classes, **params) for split in splits}
    if ref:  # missing / size-mismatched references are problems of their image's file
        raw = {split: attach_references(index, ref, root) for split, index in raw.items()}
    # one class list for every split (the given one, else the union), so that per-class counts stay right
    class_list = list(classes) if classes else union_classes(i.classes for i in raw.values())
    indexes = {s: map_classes(i, class_list) for s, i in raw.items()}
    problems = [p for i in indexes.values() for p in i.problems]
    if next(iter(indexes.values())).task == "detection":
        problems += unexpected_classes(indexes, class_list, given=bool(classes))
    return indexes, problems


def _unique(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        key = (p.path, p.kind, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def check_dataset(
    path: str | Path,
    fmt: str | None = None,
    splits: list[str] | None = None,
    decode: bool = True,
    classes: list[str] | None = None,
    params: dict[str, Any] | None = None,
    workers: int | None = None,
) -> CheckReport:
    """Check a dataset folder.

    Args:
        path: dataset folder.
        fmt: reader name (key of ``DATASETS``); None = :func:`detect_format`.
        splits: splits to read; None = :func:`default_splits`.
        decode: fully decode every image/template/mask (finds corrupt and truncated files); False only reads
            annotations and image headers.
        classes: expected class list (boxes of other classes are ``unknown_class`` errors); None = the union of the
            splits' class lists. Either way every split is counted on that one list, and classes that look like a
            slip (in one split only, or rare) are ``unexpected_class`` warnings (see :mod:`kdinspect.data.classes`).
        params: extra reader parameters; ``reference`` (``auto`` or a file) also checks
            every image's reference (``missing_reference``, ``reference_size_mismatch``; docs/template.md).
        workers: decoding threads (default: CPU count, at most 8).

    Returns:
        The :class:`CheckReport`; ``report.ok`` is False when an error was found.
    """
    t0 = time.perf_counter()
    root = Path(path)
    fmt = fmt or detect_format(root)
    split_list = list(splits) if splits else default_splits(root, fmt)
    indexes, problems = _read_splits(root, fmt, split_list, classes, dict(params or {}))
    first = next(iter(indexes.values()))
    task, class_list = first.task, list(first.classes)
    unique: dict[str, Any] = {}
    for idx in indexes.values():
        for r in idx.records:
            unique.setdefault(str(r.image), r)
    n_workers = workers or min(8, os.cpu_count() or 1)
    sizes, decode_problems, stats = _inspect(list(unique.values()), task, decode, n_workers)
    problems += decode_problems
    if task == "detection":
        per_split = {s: _det_counts(i.records, class_list) for s, i in indexes.items()}
        total = _det_counts(list(unique.values()), class_list)
    else:
        per_split = {s: _seg_counts(i.records, stats) for s, i in indexes.items()}
        total = _seg_counts(list(unique.values()), stats)
    hist = Counter(f"{w}x{h}" for h, w in sizes.values())
    return CheckReport(
        str(root),
        fmt,
        task,
        class_list,
        per_split,
        total,
        dict(hist),
        _unique(problems),
        decode,
        time.perf_counter() - t0,
    )
