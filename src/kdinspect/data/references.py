"""Reference images (golden board, DeepPCB template) for reference-aware detection: where they are found.

``data.params.reference`` selects them (see docs/template.md):

- ``auto``: per image. DeepPCB pairs use their template (``extra["template"]``); any other layout looks in a
  ``references/`` folder that mirrors ``images/`` (``images/<split>/a.png`` -> ``references/<split>/a.*``; VOC:
  ``JPEGImages/a.jpg`` -> ``references/a.*``), same stem, any image extension.
- a file path (absolute, or relative to ``data.root``): one reference for every image (one line, one product).

Every record gets ``extra["reference"]``. An image without a reference is a ``missing_reference`` error and is left
out (a pair model cannot run without one); a reference whose size differs from its image is a
``reference_size_mismatch`` warning (the dataset resizes it to the image). ``data check`` lists both by file.
"""

from __future__ import annotations

from pathlib import Path

from kdinspect.data.common import header_size, report
from kdinspect.data.io import IMAGE_EXTENSIONS
from kdinspect.data.structures import DatasetIndex, Problem

__all__ = ["REFERENCE_PARAMS", "attach_references", "reference_candidates"]

REFERENCE_PARAMS = (
    "reference",
    "align",
    "reference_perturb",
)  # keys of ``data.params`` consumed here and by the paired dataset
_IMAGE_DIRS = ("images", "JPEGImages")


def reference_candidates(image: Path) -> list[Path]:
    """Files that would be the ``auto`` reference of ``image``: the last ``images``/``JPEGImages`` folder of its path
    replaced by ``references``, same stem, every image extension."""
    parts = list(image.parts)
    hits = [i for i, p in enumerate(parts) if p in _IMAGE_DIRS]
    if not hits:
        return [image.parent / "references" / f"{image.stem}{ext}" for ext in IMAGE_EXTENSIONS]
    parts[hits[-1]] = "references"
    base = Path(*parts).with_suffix("")
    return [base.with_name(f"{image.stem}{ext}") for ext in IMAGE_EXTENSIONS]


def _auto(rec, problems: list[Problem]) -> Path | None:
    if "template" in rec.extra:  # DeepPCB: the template of the pair (None when missing)
        ref = rec.extra["template"]
        if ref is None:
            report(problems, rec.image, "missing_reference", "the pair has no template (*_temp.jpg)", "skipped image")
        return ref
    found = next((c for c in reference_candidates(Path(rec.image)) if c.is_file()), None)
    if found is None:
        where = reference_candidates(Path(rec.image))[0].with_suffix(".*")
        report(problems, rec.image, "missing_reference", f"no reference {where}", "skipped image")
    return found


def attach_references(index: DatasetIndex, spec: str, root: str | Path | None = None) -> DatasetIndex:
    """Set ``extra["reference"]`` on every record of ``index`` (in place; returns it).

    Args:
        index: a detection index.
        spec: ``auto`` or a reference file (absolute or relative to ``root``).
        root: the dataset folder (``data.root``).

    Raises:
        FileNotFoundError: ``spec`` names a file that does not exist.
        ValueError: ``index`` is not a detection index.
    """
    if index.task != "detection":
        raise ValueError(f"references are supported for detection data, got a {index.task} index")
    shared: Path | None = None
    if spec != "auto":
        shared = Path(spec)
        if not shared.is_absolute() and root is not None:
            shared = Path(root) / shared
        if not shared.is_file():
            raise FileNotFoundError(f"data.params.reference: {shared} not found (use 'auto' or an image file)")
    sizes: dict[Path, tuple[int, int] | None] = {}
    kept = []
    for rec in index.records:
        ref = shared if shared is not None else _auto(rec, index.problems)
        if ref is None:
            continue
        if ref not in sizes:
            sizes[ref] = header_size(ref, index.problems)
        size = sizes[ref]
        if size is None:
            report(index.problems, rec.image, "missing_reference", f"reference {ref} is unreadable", "skipped image")
            continue
        if rec.width and rec.height and size != (rec.height, rec.width):
            msg = f"reference {Path(ref).name} is {size[1]}x{size[0]}, the image is {rec.width}x{rec.height}"
            report(index.problems, ref, "reference_size_mismatch", msg, "reference resized to the image", "warning")
        rec.extra["reference"] = ref
        kept.append(rec)
    index.records = kept
    return index
