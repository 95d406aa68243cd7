"""Per-image teacher soft labels for offline distillation (MCFF-L step 2): file layout and 8-bit quantisation.

The maps are the teacher's crack probability ``softmax(gated_logits / T1)[crack]`` of each output, in the order
``h, x, y, mix``. Two formats, both read by the data layer (``data.params.soft_labels``, see
:func:`soft_label_dirs`):

- ``png`` (as released): one 8-bit grayscale PNG per output and image, ``<out>/<output>/<image_id>.png`` with value
  ``round(255 * p)``; the four folders are stacked as channels when read back (``p = pixel / 255``). The released
  code writes the same layout (``teacher_label_{h,x,y,mix}/label/``); its matplotlib call truncates instead of
  rounding, a difference of at most 1/255.
- ``npy``: ``<out>/<image_id>.npy``, float16 (4, H, W), no 8-bit quantisation.

A ``soft_labels.json`` in ``<out>`` records the temperature, format and teacher.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "SOFT_FORMATS",
    "SOFT_OUTPUTS",
    "quantize_8bit",
    "soft_label_dirs",
    "write_soft_label",
    "write_soft_label_info",
]

SOFT_FORMATS = ("png", "npy")
SOFT_OUTPUTS = ("h", "x", "y", "mix")
INFO_FILE = "soft_labels.json"


def quantize_8bit(prob: np.ndarray) -> np.ndarray:
    """Round probabilities in [0, 1] to the 256 levels an 8-bit PNG holds (uint8)."""
    return np.clip(np.rint(np.asarray(prob, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def soft_label_dirs(out_dir: str | Path, fmt: str) -> list[str]:
    """The folder list to give the data reader (``data.params.soft_labels``) for soft labels written to ``out_dir``."""
    if fmt not in SOFT_FORMATS:
        raise ValueError(f"soft-label format {fmt!r} not in {list(SOFT_FORMATS)}")
    out_dir = Path(out_dir)
    return [str(out_dir / name) for name in SOFT_OUTPUTS] if fmt == "png" else [str(out_dir)]


def write_soft_label(prob: np.ndarray, out_dir: str | Path, image_id: str, fmt: str = "png") -> list[Path]:
    """Write one image's soft labels.

    Args:
        prob: (4, H, W) crack probabilities in [0, 1] of the outputs h, x, y, mix.
        out_dir: soft-label root folder (sub-folders are created).
        image_id: file stem (the dataset's image id).
        fmt: ``png`` (8-bit, one file per output) or ``npy`` (float16, one file).

    Returns:
        The written files.
    """
    dirs = soft_label_dirs(out_dir, fmt)
    prob = np.asarray(prob, dtype=np.float32)
    if prob.shape[:1] != (len(SOFT_OUTPUTS),) or prob.ndim != 3:
        raise ValueError(f"soft labels of {image_id!r}: expected ({len(SOFT_OUTPUTS)}, H, W), got {prob.shape}")
    for d in dirs:
        Path(d).mkdir(parents=True, exist_ok=True)
    if fmt == "npy":
        path = Path(dirs[0]) / f"{image_id}.npy"
        np.save(path, prob.astype(np.float16))
        return [path]
    paths = []
    for d, channel in zip(dirs, quantize_8bit(prob)):
        path = Path(d) / f"{image_id}.png"
        Image.fromarray(channel, mode="L").save(path)
        paths.append(path)
    return paths


def write_soft_label_info(out_dir: str | Path, info: dict[str, Any]) -> Path:
    """Write ``soft_labels.json`` (temperature, format, teacher, outputs) into ``out_dir``."""
    path = Path(out_dir) / INFO_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2))
    return path
