"""Per-image teacher soft labels for offline distillation (MCFF-L step 2): writing, reading, quantisation.

One file per image, named ``<image_id>.png`` or ``<image_id>.npy`` in one folder, holding the teacher's crack
probability ``softmax(gated_logits / T1)[crack]`` of each output, in the order ``h, x, y, mix``:

- ``png``: an 8-bit RGBA PNG, channel c = output c, value ``round(255 * p)``. The released code writes one 8-bit PNG
  per output and image (four folders); the quantisation is the same (the released matplotlib call truncates instead
  of rounding, a difference of at most 1/255).
- ``npy``: a float16 array (4, H, W), no 8-bit quantisation.

A ``soft_labels.json`` next to the files records the temperature, format and teacher.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "SOFT_FORMATS",
    "quantize_8bit",
    "read_soft_label",
    "read_soft_label_info",
    "write_soft_label",
    "write_soft_label_info",
]

logger = logging.getLogger(__name__)

SOFT_FORMATS = ("png", "npy")
INFO_FILE = "soft_labels.json"


def quantize_8bit(prob: np.ndarray) -> np.ndarray:
    """Round probabilities in [0, 1] to the 256 levels an 8-bit PNG holds (uint8)."""
    return np.clip(np.rint(np.asarray(prob, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def write_soft_label(prob: np.ndarray, out_dir: str | Path, image_id: str, fmt: str = "png") -> Path:
    """Write one image's soft labels.

    Args:
        prob: (C, H, W) crack probabilities in [0, 1]; C = 4 (h, x, y, mix) for MCFF-L (1 to 4 allowed for PNG).
        out_dir: destination folder (created).
        image_id: file stem.
        fmt: ``png`` (8-bit) or ``npy`` (float16).

    Returns:
        The written file.
    """
    if fmt not in SOFT_FORMATS:
        raise ValueError(f"soft-label format {fmt!r} not in {list(SOFT_FORMATS)}")
    prob = np.asarray(prob, dtype=np.float32)
    if prob.ndim != 3 or not 1 <= prob.shape[0] <= 4:
        raise ValueError(f"soft labels of {image_id!r}: expected (C<=4, H, W), got {prob.shape}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{image_id}.{fmt}"
    if fmt == "npy":
        np.save(path, prob.astype(np.float16))
        return path
    q = quantize_8bit(prob).transpose(1, 2, 0)  # (H, W, C)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[q.shape[2]]
    Image.fromarray(q[..., 0] if mode == "L" else q, mode=mode).save(path)
    return path


def read_soft_label(path: str | Path) -> np.ndarray:
    """Read a soft-label file written by :func:`write_soft_label`.

    Returns:
        (C, H, W) float32 probabilities in [0, 1].

    Raises:
        FileNotFoundError: missing file. ValueError: unreadable or wrongly shaped file (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"soft label not found: {path}")
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False).astype(np.float32)
        elif path.suffix == ".png":
            with Image.open(path) as img:
                q = np.asarray(img)
            arr = (q[None] if q.ndim == 2 else q.transpose(2, 0, 1)).astype(np.float32) / 255.0
        else:
            raise ValueError(f"suffix {path.suffix!r} not in ['.png', '.npy']")
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read soft label {path}: {err}") from err
    if arr.ndim != 3:
        raise ValueError(f"soft label {path}: expected (C, H, W), got shape {arr.shape}")
    return arr


def write_soft_label_info(out_dir: str | Path, info: dict[str, Any]) -> Path:
    """Write ``soft_labels.json`` (temperature, format, teacher, outputs) into ``out_dir``."""
    path = Path(out_dir) / INFO_FILE
    path.write_text(json.dumps(info, indent=2))
    return path


def read_soft_label_info(out_dir: str | Path) -> dict[str, Any]:
    """Read ``soft_labels.json`` of a soft-label folder ({} if absent)."""
    path = Path(out_dir) / INFO_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
