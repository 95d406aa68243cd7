"""Tiny copies of real data for reliability tests: a few NEU-DET XML/JPG files with their own split lists."""

from __future__ import annotations

import shutil
from pathlib import Path

NEU_MINI_CLASSES = ["crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches"]


def neu_mini(shared: Path, dest: Path, train: list[str] | None = None, val: list[str] | None = None) -> Path:
    """Copy ``<class>_1..3`` of every NEU-DET class to ``dest`` (``IMAGES/``, ``ANNOTATIONS/``) and write
    ``splits/train.txt`` (default: ``_1``, ``_2``) and ``splits/val.txt`` (default: ``_3``)."""
    src = shared / "neu-det"
    for sub in ("IMAGES", "ANNOTATIONS", "splits"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    ids = [f"{c}_{i}" for c in NEU_MINI_CLASSES for i in (1, 2, 3)]
    for stem in ids:
        shutil.copy(src / "IMAGES" / f"{stem}.jpg", dest / "IMAGES" / f"{stem}.jpg")
        shutil.copy(src / "ANNOTATIONS" / f"{stem}.xml", dest / "ANNOTATIONS" / f"{stem}.xml")
    train = train if train is not None else [s for s in ids if not s.endswith("_3")]
    val = val if val is not None else [s for s in ids if s.endswith("_3")]
    (dest / "splits" / "train.txt").write_text("\n".join(train) + "\n")
    (dest / "splits" / "val.txt").write_text("\n".join(val) + "\n")
    return dest


def rename_class(xml: Path, old: str, new: str) -> None:
    """Rename every ``<name>old</name>`` of one annotation file."""
    xml.write_text(xml.read_text().replace(f"<name>{old}</name>", f"<name>{new}</name>"))


def xml_names(xml: Path) -> list[str]:
    """Class names of the objects of one VOC annotation, in file order."""
    import xml.etree.ElementTree as ET

    return [(o.findtext("name") or "").strip() for o in ET.parse(xml).getroot().findall("object")]
