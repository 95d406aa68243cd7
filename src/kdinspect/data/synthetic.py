"""Seeded procedural defect data, written in the same on-disk formats as real datasets.

Detection: steel-like surfaces (illumination drift, rolling streaks, grain) with four defect classes drawn additively:
``scratch`` (long thin bright or dark line at any angle), ``spot`` (cluster of small dark pits), ``inclusion``
(short dark streak along the rolling direction) and ``patch`` (large, low-contrast, blurred region). Boxes are the
tight extent of each defect's drawn pixels. Written as VOC XML (default), COCO JSON or YOLO txt with split lists.

Segmentation: pavement-like textures (grain + aggregate specks) with 0-3 thin dark random-walk cracks (sometimes
branching); the mask is exactly the drawn crack stroke. Written as ``images/<split>/*.png`` + ``masks/<split>/*.png``.

Every image draws from its own ``numpy.random.default_rng([seed, split, i])``, so the same arguments give
byte-identical files. A ``synthetic.json`` marker records the arguments; :func:`ensure_synthetic` regenerates only
when it is missing or different.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kdinspect.data.structures import DatasetIndex
from kdinspect.data.synthetic_draw import SYNTHETIC_DET_CLASSES, _crack_image, _detection_image

__all__ = [
    "SYNTHETIC_DET_CLASSES",
    "ensure_synthetic",
    "generate_detection_dataset",
    "generate_segmentation_dataset",
    "read_synthetic_det",
    "read_synthetic_seg",
]

MARKER = "synthetic.json"
_SPLIT_CODES = {"train": 0, "val": 1}
_VERSION = 1


def _save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG", compress_level=1)


def _voc_xml(name: str, h: int, w: int, boxes: list[list[float]], labels: list[int]) -> str:
    objs = "".join(
        f"\t<object>\n\t\t<name>{SYNTHETIC_DET_CLASSES[c]}</name>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n"
        f"\t\t\t<xmin>{int(b[0]) + 1}</xmin>\n\t\t\t<ymin>{int(b[1]) + 1}</ymin>\n"
        f"\t\t\t<xmax>{int(b[2])}</xmax>\n\t\t\t<ymax>{int(b[3])}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for b, c in zip(boxes, labels)
    )
    return (
        f"<annotation>\n\t<filename>{name}</filename>\n\t<size>\n\t\t<width>{w}</width>\n"
        f"\t\t<height>{h}</height>\n\t\t<depth>1</depth>\n\t</size>\n{objs}</annotation>\n"
    )


def _write_references(out: Path, split: str, refs: list[tuple[str, np.ndarray]], fmt: str) -> None:
    """Paired mode: the defect-free reference of each image where ``reference: auto`` looks for it."""
    folder = out / "references" if fmt == "voc" else out / "references" / split
    for name, ref in refs:
        _save_png(folder / f"{name}.png", ref)


def _write_detection_split(out: Path, split: str, items: list[tuple], fmt: str) -> None:
    if fmt == "voc":
        for name, img, boxes, labels in items:
            _save_png(out / "JPEGImages" / f"{name}.png", img)
            (out / "Annotations").mkdir(parents=True, exist_ok=True)
            xml = _voc_xml(f"{name}.png", img.shape[0], img.shape[1], boxes, labels)
            (out / "Annotations" / f"{name}.xml").write_text(xml)
        (out / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (out / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{it[0]}\n" for it in items))
    elif fmt == "yolo":
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for name, img, boxes, labels in items:
            _save_png(out / "images" / split / f"{name}.png", img)
            h, w = img.shape
            lines = "".join(
                f"{c} {(b[0] + b[2]) / 2 / w:.6f} {(b[1] + b[3]) / 2 / h:.6f} {(b[2] - b[0]) / w:.6f} "
                f"{(b[3] - b[1]) / h:.6f}\n"
                for b, c in zip(boxes, labels)
            )
            (out / "labels" / split / f"{name}.txt").write_text(lines)
        (out / "data.yaml").write_text(f"train: images/train\nval: images/val\nnames: {SYNTHETIC_DET_CLASSES}\n")
    elif fmt == "coco":
        images: list[dict[str, Any]] = []
        anns: list[dict[str, Any]] = []
        for k, (name, img, boxes, labels) in enumerate(items):
            _save_png(out / "images" / split / f"{name}.png", img)
            images.append({"id": k + 1, "file_name": f"{name}.png", "height": img.shape[0], "width": img.shape[1]})
            for b, c in zip(boxes, labels):
                bw, bh = b[2] - b[0], b[3] - b[1]
                anns.append(
                    {
                        "id": len(anns) + 1,
                        "image_id": k + 1,
                        "category_id": c + 1,
                        "bbox": [b[0], b[1], bw, bh],
                        "area": bw * bh,
                        "iscrowd": 0,
                    }
                )
        cats = [{"id": i + 1, "name": n} for i, n in enumerate(SYNTHETIC_DET_CLASSES)]
        (out / "annotations").mkdir(parents=True, exist_ok=True)
        doc = {"images": images, "annotations": anns, "categories": cats}
        (out / "annotations" / f"{split}.json").write_text(json.dumps(doc))
    else:
        raise ValueError(f"unknown synthetic detection format {fmt!r}; valid: ['voc', 'coco', 'yolo']")


def generate_detection_dataset(
    out_dir: str | Path,
    n_train: int = 64,
    n_val: int = 16,
    seed: int = 0,
    imgsz: int = 128,
    fmt: str = "voc",
    paired: bool = False,
) -> Path:
    """Write a synthetic steel-defect detection set (splits ``train`` and ``val``).

    Args:
        out_dir: output folder (created).
        n_train: training images.
        n_val: validation images.
        seed: generator seed (same arguments -> byte-identical files).
        imgsz: square image size in pixels.
        fmt: ``voc`` (``JPEGImages/``, ``Annotations/``, ``ImageSets/Main/<split>.txt``), ``coco``
            (``images/<split>/``, ``annotations/<split>.json``) or ``yolo`` (``images/<split>/``, ``labels/<split>/``,
            ``data.yaml``).
        paired: also write each image's defect-free reference (the same texture before the defects were planted,
            with its own sensor noise) to ``references/<split>/<name>.png`` (VOC: ``references/<name>.png``), the
            layout ``data.params.reference: auto`` reads. The images and boxes are the same as without it.

    Returns:
        ``out_dir``. Classes: :data:`SYNTHETIC_DET_CLASSES`.
    """
    out = Path(out_dir)
    if fmt not in ("voc", "coco", "yolo"):
        raise ValueError(f"unknown synthetic detection format {fmt!r}; valid: ['voc', 'coco', 'yolo']")
    for split, n in (("train", n_train), ("val", n_val)):
        items, refs = [], []
        for i in range(n):
            rng = np.random.default_rng([seed, _SPLIT_CODES[split], i])
            bg: list[np.ndarray] = []
            img, boxes, labels = _detection_image(rng, imgsz, imgsz, bg)
            items.append((f"{split}_{i:04d}", img, boxes, labels))
            if paired:
                noise = np.random.default_rng([seed, _SPLIT_CODES[split], i, 1]).normal(0, 2.0, bg[0].shape)
                refs.append((f"{split}_{i:04d}", np.clip(bg[0] + noise, 0, 255).astype(np.uint8)))
        _write_detection_split(out, split, items, fmt)
        if paired:
            _write_references(out, split, refs, fmt)
    return out


def _incomplete(mask: np.ndarray, rng: np.random.Generator, keep: float, tile: int = 8) -> np.ndarray:
    """The crack pixels of a random ``keep`` share of ``tile`` x ``tile`` tiles (an annotation that misses cracks)."""
    h, w = mask.shape
    tiles = rng.random((-(-h // tile), -(-w // tile))) < keep
    return mask * np.kron(tiles, np.ones((tile, tile), bool))[:h, :w].astype(mask.dtype)


def generate_segmentation_dataset(
    out_dir: str | Path,
    n_train: int = 64,
    n_val: int = 16,
    seed: int = 0,
    size: tuple[int, int] = (128, 160),
    label_keep: float = 1.0,
) -> Path:
    """Write a synthetic crack segmentation set: ``images/<split>/*.png`` (RGB) + ``masks/<split>/*.png`` (0/255).

    Args:
        out_dir: output folder (created).
        n_train: training images.
        n_val: validation images.
        seed: generator seed (same arguments -> byte-identical files).
        size: (H, W) of the images.
        label_keep: below 1, the *training* masks are incomplete annotations: they keep the crack pixels of only
            this share of 8x8 tiles (drawn from a separate stream, so the images are those of the complete set).
            Validation masks are always complete.
    """
    if not 0.0 < label_keep <= 1.0:
        raise ValueError(f"label_keep must be in (0, 1], got {label_keep}")
    out = Path(out_dir)
    h, w = size
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            rng = np.random.default_rng([seed, _SPLIT_CODES[split], i])
            img, mask = _crack_image(rng, h, w)
            if split == "train" and label_keep < 1.0:
                mask = _incomplete(mask, np.random.default_rng([seed, _SPLIT_CODES[split], i, 1]), label_keep)
            _save_png(out / "images" / split / f"{split}_{i:04d}.png", img)
            _save_png(out / "masks" / split / f"{split}_{i:04d}.png", mask * 255)
    return out


def ensure_synthetic(root: str | Path, kind: str, **params: Any) -> Path:
    """Generate a synthetic set into ``root`` unless a matching one is already there.

    The set is written to a temporary sibling folder and renamed into place, so concurrent processes never read a
    half-written set. A folder with a different ``synthetic.json`` is regenerated; a non-empty folder without the
    marker is never touched (``FileExistsError``).

    Args:
        root: target folder.
        kind: ``detection`` or ``segmentation``.
        **params: arguments of :func:`generate_detection_dataset` / :func:`generate_segmentation_dataset`.
    """
    root = Path(root)
    generators: dict[str, Callable[..., Path]] = {
        "detection": generate_detection_dataset,
        "segmentation": generate_segmentation_dataset,
    }
    gen = generators.get(kind)
    if gen is None:
        raise ValueError(f"unknown synthetic kind {kind!r}; valid: ['detection', 'segmentation']")
    if "size" in params:
        params["size"] = list(params["size"])
    wanted = {"kind": kind, "version": _VERSION, **params}
    marker = root / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return root
    if root.exists() and any(root.iterdir()) and not marker.is_file():
        raise FileExistsError(f"{root} is not empty and holds no {MARKER}; refusing to write synthetic data there")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    call = dict(params)
    if "size" in call:
        call["size"] = tuple(call["size"])
    gen(tmp, **call)
    (tmp / MARKER).write_text(json.dumps(wanted, sort_keys=True))
    if root.exists():
        shutil.rmtree(root)
    try:
        tmp.rename(root)
    except OSError:  # another process won the race: use its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def read_synthetic_det(
    root: str | Path,
    split: str = "train",
    classes: list[str] | None = None,
    n_train: int = 64,
    n_val: int = 16,
    seed: int = 0,
    imgsz: int = 128,
    fmt: str = "voc",
    paired: bool = False,
) -> DatasetIndex:
    """Reader of ``synthetic-det``: generate the set into ``root`` if needed (see :func:`ensure_synthetic`), then
    read it with the ``fmt`` reader. Splits: ``train``, ``val``. ``paired``: also write the defect-free references
    (use with ``data.params.reference: auto``)."""
    from kdinspect.data.detection import read_coco, read_yolo
    from kdinspect.data.voc import read_voc

    readers = {"voc": read_voc, "coco": read_coco, "yolo": read_yolo}
    if fmt not in readers:
        raise ValueError(f"unknown synthetic detection format {fmt!r}; valid: {sorted(readers)}")
    extra = {"paired": True} if paired else {}  # unpaired sets keep their marker (no regeneration)
    ensure_synthetic(root, "detection", n_train=n_train, n_val=n_val, seed=seed, imgsz=imgsz, fmt=fmt, **extra)
    return readers[fmt](root, split, classes or list(SYNTHETIC_DET_CLASSES))


def read_synthetic_seg(
    root: str | Path,
    split: str = "train",
    classes: list[str] | None = None,
    n_train: int = 64,
    n_val: int = 16,
    seed: int = 0,
    size: tuple[int, int] | list[int] = (128, 160),
    label_keep: float = 1.0,
) -> DatasetIndex:
    """Reader of ``synthetic-seg``: generate the crack set into ``root`` if needed, then read it as ``masks``.
    ``label_keep`` < 1 makes the training masks incomplete (see :func:`generate_segmentation_dataset`)."""
    from kdinspect.data.segmentation import read_masks

    extra = {"label_keep": float(label_keep)} if label_keep != 1.0 else {}  # complete sets keep their marker
    ensure_synthetic(root, "segmentation", n_train=n_train, n_val=n_val, seed=seed, size=tuple(size), **extra)
    return read_masks(root, split, classes or ["crack"])
