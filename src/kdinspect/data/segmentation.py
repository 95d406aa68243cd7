"""Segmentation readers: generic image + mask folders, DeepCrack and CrackForest.

Masks are binary (1 = defect): an image mask whose values are all in {0, 1} is read as is, any other is thresholded
at ``> 127`` (see :func:`kdinspect.data.io.load_mask`); ``kdinspect data check`` reports masks whose values are not
{0, 255} (``mask_values`` warnings, saying what the reader does). Readers only check that files exist; decoding
problems (corrupt files, mask/image size mismatch) are found by ``kdinspect data check`` and, during training,
reported and skipped by the dataset. An image named twice in a list file is read once (``duplicate_split_entry``).

CrackForest (CFD) mask rule and split
-------------------------------------
``groundTruth/NNN.mat`` holds region labels: 1 = background and 2 = crack in all 118 files. 22 files also use labels
3/4 inconsistently: sometimes for further thin crack segments (label 4 in 084), sometimes for regions enclosed by cracks
that are not crack pixels (label 3 covers 24k-45k px in 093, 097 and 101). The default ``extra_labels="background"``
therefore takes ``crack = (Segmentation == 2)``, the common convention in public code; ``extra_labels="crack"`` also
counts labels 3/4 as crack. ``seg/NNN.seg`` decodes to ``Segmentation - 1`` and gives the same masks without scipy.

CFD has no official split. ``train``/``test`` are fixed here as a seeded permutation of the 118 annotated ids (sorted,
``numpy.random.default_rng(0).permutation``): the first 72 are ``train`` and the remaining 46 are ``test`` (a 72/46,
about 60/40, split as commonly used for CFD); ``all`` is every annotated image. Images without annotation (201-208,
301-329 in the public copy) are in no split and are reported as ``missing_annotation`` warnings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kdinspect.data.common import find_dir, image_files, natural_key, read_list_file, report, resolve_list_file
from kdinspect.data.structures import DatasetIndex, Problem, SegRecord

__all__ = [
    "CRACKFOREST_TEST",
    "CRACKFOREST_TRAIN",
    "attach_soft_labels",
    "crackforest_split",
    "read_crackforest",
    "read_deepcrack",
    "read_masks",
]

CRACKFOREST_TRAIN = 72  # images in the CrackForest train split; the other 46 annotated images form the test split
CRACKFOREST_TEST = 46
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff", ".jpg")


def _default_classes(classes: list[str] | None, default: str) -> list[str]:
    class_list = list(classes) if classes else [default]
    if len(class_list) != 1:
        raise ValueError(f"segmentation masks are binary: give exactly one class name, got {class_list}")
    return class_list


def _mask_for(mask_dir: Path, stem: str, suffix: str) -> Path | None:
    for ext in MASK_EXTENSIONS:
        cand = mask_dir / f"{stem}{suffix}{ext}"
        if cand.is_file():
            return cand
    return None


def _pair_folder(img_dir: Path, mask_dir: Path, suffix: str, problems: list[Problem]) -> list[SegRecord]:
    """Records for every image in ``img_dir`` with its same-stem mask in ``mask_dir``."""
    records = []
    images = image_files(img_dir)
    for stem in sorted(images, key=natural_key):
        mask = _mask_for(mask_dir, stem, suffix)
        if mask is None:
            report(
                problems, images[stem], "missing_mask", f"no mask {mask_dir.name}/{stem}{suffix}.png", "skipped image"
            )
            continue
        records.append(SegRecord(images[stem], mask, stem))
    masks = mask_dir.iterdir() if mask_dir.is_dir() else []
    mask_files = {p.stem.removesuffix(suffix): p for p in masks if p.suffix.lower() in MASK_EXTENSIONS}
    for stem in sorted(set(mask_files) - set(images), key=natural_key):
        report(
            problems,
            mask_files[stem],
            "missing_image",
            f"no image {img_dir.name}/{stem}.* for this mask",
            "mask skipped",
        )
    return records


def attach_soft_labels(index: DatasetIndex, dirs: str | list[str]) -> DatasetIndex:
    """Set ``record.extra["soft_label"]`` from soft-label folders (``<dir>/<stem>.png`` or ``.npy``; several folders
    are stacked as channels). Records without a soft label are dropped with a ``missing_soft_label`` error.

    A relative folder is looked up under the dataset root (the released layout keeps soft labels there) unless it
    exists relative to the working directory (where ``kdinspect softlabels --out`` writes, like ``data.root``)."""
    folders = [dirs] if isinstance(dirs, str) else list(dirs)
    root = index.root or Path(".")
    paths = [
        Path(d) if Path(d).is_absolute() or (Path(d).is_dir() and not (root / d).is_dir()) else root / d
        for d in folders
    ]
    kept = []
    for rec in index.records:
        files = [
            next((f for f in (d / f"{rec.image_id}.png", d / f"{rec.image_id}.npy") if f.is_file()), None)
            for d in paths
        ]
        missing = [str(d) for d, f in zip(paths, files) if f is None]
        if missing:
            report(index.problems, rec.image, "missing_soft_label", f"no soft label in {missing}", "skipped image")
            continue
        rec.extra["soft_label"] = [str(f) for f in files] if len(files) > 1 else str(files[0])
        kept.append(rec)
    index.records = kept
    return index


def _split_folders(root: Path, image_dir: str, mask_dir: str) -> list[str]:
    base = root / image_dir
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def _records_from_list(
    root: Path, list_file: Path, image_dir: str, mask_dir: str, suffix: str, problems: list[Problem]
) -> list[SegRecord]:
    """Records of a list file whose lines are ``image[,| ]mask`` paths or bare image ids."""
    images = image_files(root / image_dir)
    records = []
    seen: dict[Path, str] = {}
    for entry in read_list_file(list_file):
        parts = [p for p in entry.replace(",", " ").split() if p]
        if len(parts) >= 2:
            img = next((p for p in (root / parts[0], root / image_dir / parts[0]) if p.is_file()), None)
            mask = next((p for p in (root / parts[1], root / mask_dir / parts[1]) if p.is_file()), None)
        else:
            img = images.get(Path(parts[0]).stem)
            mask = _mask_for(root / mask_dir, Path(parts[0]).stem, suffix)
        if img is None:
            report(problems, list_file, "missing_split_entry", f"entry {entry!r}: image not found", "entry skipped")
            continue
        if img.resolve() in seen:
            msg = f"entry {entry!r} names image {img.name} again (first listed as {seen[img.resolve()]!r})"
            report(problems, list_file, "duplicate_split_entry", msg, "listed once (first kept)", "warning")
            continue
        seen[img.resolve()] = entry
        if mask is None:
            report(problems, img, "missing_mask", f"no mask for list entry {entry!r}", "skipped image")
            continue
        records.append(SegRecord(img, mask, img.stem))
    return records


def read_masks(
    root: str | Path,
    split: str = "all",
    classes: list[str] | None = None,
    image_dir: str = "images",
    mask_dir: str = "masks",
    mask_suffix: str = "",
    soft_labels: str | list[str] | None = None,
) -> DatasetIndex:
    """Read a generic image + mask folder.

    Layouts: ``images/<split>/x.jpg`` + ``masks/<split>/x.png`` (split sub-folders), or flat ``images/`` + ``masks/``
    with ``split`` = ``all`` or a list file (``splits/<split>.txt`` or a path; lines are image ids, or
    ``image mask`` / ``image,mask`` relative paths as in MCFF-L's lists).

    Args:
        root: dataset folder.
        split: split sub-folder, list file, or ``all`` (flat folders: every image; split folders: all of them).
        classes: one class name (default ``["defect"]``).
        image_dir: image folder name under root.
        mask_dir: mask folder name under root.
        mask_suffix: text between the stem and the mask extension (e.g. ``_mask``).
        soft_labels: folder(s), relative to root, of offline soft labels (see :func:`attach_soft_labels`).
    """
    root = Path(root)
    class_list = _default_classes(classes, "defect")
    problems: list[Problem] = []
    subdirs = _split_folders(root, image_dir, mask_dir)
    if (root / image_dir / split).is_dir():
        records = _pair_folder(root / image_dir / split, root / mask_dir / split, mask_suffix, problems)
    elif split == "all" and subdirs and not image_files(root / image_dir):
        records = []
        for sub in subdirs:
            records += _pair_folder(root / image_dir / sub, root / mask_dir / sub, mask_suffix, problems)
    elif split == "all":
        records = _pair_folder(root / image_dir, root / mask_dir, mask_suffix, problems)
    else:
        list_file = resolve_list_file(root, split, ["splits", "lists", "ImageSets/Segmentation"])
        if list_file is None:
            raise ValueError(f"{root}: unknown split {split!r}; valid: {['all', *subdirs]} or a list file")
        records = _records_from_list(root, list_file, image_dir, mask_dir, mask_suffix, problems)
    index = DatasetIndex("segmentation", class_list, records, problems, root, split)
    return attach_soft_labels(index, soft_labels) if soft_labels else index


def read_deepcrack(
    root: str | Path, split: str = "train", classes: list[str] | None = None, soft_labels: str | list[str] | None = None
) -> DatasetIndex:
    """Read DeepCrack (Liu et al. 2019): ``train_img/`` + ``train_lab/`` (300) and ``test_img/`` + ``test_lab/`` (237).

    Args:
        root: dataset folder.
        split: ``train``, ``test`` or ``all``.
        classes: one class name (default ``["crack"]``).
        soft_labels: offline soft-label folder(s) relative to root.
    """
    root = Path(root)
    valid = sorted(p.name.removesuffix("_img") for p in root.glob("*_img") if p.is_dir())
    names = valid if split == "all" else [split]
    if split != "all" and split not in valid:
        raise ValueError(f"{root}: unknown DeepCrack split {split!r}; valid: {['all', *valid]}")
    problems: list[Problem] = []
    records = []
    for name in names:
        records += _pair_folder(root / f"{name}_img", root / f"{name}_lab", "", problems)
    index = DatasetIndex("segmentation", _default_classes(classes, "crack"), records, problems, root, split)
    return attach_soft_labels(index, soft_labels) if soft_labels else index


def crackforest_split(ids: list[str], split: str, seed: int = 0, n_train: int = CRACKFOREST_TRAIN) -> list[str]:
    """The fixed CrackForest split: ``ids`` sorted, permuted with ``default_rng(seed)``; first ``n_train`` = train."""
    ordered = sorted(ids, key=natural_key)
    perm = np.random.default_rng(seed).permutation(len(ordered))
    shuffled = [ordered[i] for i in perm]
    if split == "all":
        return ordered
    if split == "train":
        return sorted(shuffled[:n_train], key=natural_key)
    if split == "test":
        return sorted(shuffled[n_train:], key=natural_key)
    raise ValueError(f"unknown CrackForest split {split!r}; valid: ['train', 'test', 'all']")


def read_crackforest(
    root: str | Path,
    split: str = "train",
    classes: list[str] | None = None,
    extra_labels: str = "background",
    source: str = "mat",
    split_seed: int = 0,
    n_train: int = CRACKFOREST_TRAIN,
    soft_labels: str | list[str] | None = None,
) -> DatasetIndex:
    """Read CrackForest: ``image/NNN.jpg`` + ``groundTruth/NNN.mat`` (or ``seg/NNN.seg``).

    Args:
        root: dataset folder.
        split: ``train`` (72), ``test`` (46) or ``all`` (118); see the module docstring.
        classes: one class name (default ``["crack"]``).
        extra_labels: how to treat labels 3/4: ``background`` (default) or ``crack``.
        source: ``mat`` (groundTruth, needs scipy) or ``seg`` (BSDS text runs).
        split_seed: permutation seed of the split (0 = the documented split).
        n_train: size of the train split.
        soft_labels: offline soft-label folder(s) relative to root.
    """
    root = Path(root)
    if extra_labels not in ("background", "crack"):
        raise ValueError(f"extra_labels must be 'background' or 'crack', got {extra_labels!r}")
    if source not in ("mat", "seg"):
        raise ValueError(f"source must be 'mat' or 'seg', got {source!r}")
    ann_dir, ext, fmt = (
        (root / "groundTruth", ".mat", "crackforest-mat")
        if source == "mat"
        else (root / "seg", ".seg", "crackforest-seg")
    )
    img_dir = find_dir(root, ["image", "images"])
    if img_dir is None or not ann_dir.is_dir():
        raise FileNotFoundError(f"{root}: not a CrackForest folder (needs image/ and {ann_dir.name}/)")
    problems: list[Problem] = []
    images = image_files(img_dir)
    anns = {p.stem: p for p in ann_dir.glob(f"*{ext}")}
    for stem in sorted(set(images) - set(anns), key=natural_key):
        report(
            problems,
            images[stem],
            "missing_annotation",
            f"no {ann_dir.name}/{stem}{ext}",
            "not in any split",
            "warning",
        )
    for stem in sorted(set(anns) - set(images), key=natural_key):
        report(problems, anns[stem], "missing_image", f"no {img_dir.name}/{stem}.jpg", "annotation skipped")
    ids = crackforest_split([s for s in anns if s in images], split, split_seed, n_train)
    records = [SegRecord(images[s], anns[s], s, fmt, extra={"extra_labels": extra_labels}) for s in ids]
    index = DatasetIndex("segmentation", _default_classes(classes, "crack"), records, problems, root, split)
    return attach_soft_labels(index, soft_labels) if soft_labels else index
