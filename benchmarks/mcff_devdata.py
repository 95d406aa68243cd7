"""Copy DeepCrack / CrackForest into a compact folder for a remote (GPU) run of ``python -m benchmarks.mcff``.

    python -m benchmarks.mcff_devdata deepcrack ../shared/datasets/deepcrack .devdata/deepcrack --jpegtran
    python -m benchmarks.mcff_devdata crackforest ../shared/datasets/crackforest .devdata/crackforest

With ``--jpegtran`` every JPEG is re-encoded losslessly (``jpegtran -copy none -optimize``: Huffman tables only, the
DCT coefficients are untouched) and checked with OpenCV to decode to exactly the original pixels; any difference
stops the copy with an error naming the file. Every other file (masks, README, lists) is copied byte for byte.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np


def _same_pixels(a: Path, b: Path) -> bool:
    x, y = cv2.imread(str(a), cv2.IMREAD_UNCHANGED), cv2.imread(str(b), cv2.IMREAD_UNCHANGED)
    return x is not None and y is not None and x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y)


def copy_tree(src: Path, dst: Path, jpegtran: bool, progressive: bool = False) -> dict[str, int]:
    """Copy ``src`` to ``dst`` (JPEGs re-encoded losslessly and verified if ``jpegtran``); returns byte counts."""
    stats = {"files": 0, "jpeg": 0, "bytes_in": 0, "bytes_out": 0}
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        out = dst / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        if jpegtran and f.suffix.lower() in (".jpg", ".jpeg"):
            cmd = ["jpegtran", "-copy", "none", "-optimize", *(["-progressive"] if progressive else [])]
            subprocess.run([*cmd, "-outfile", str(out), str(f)], check=True)
            if not _same_pixels(f, out):
                raise ValueError(f"{f}: the re-encoded JPEG {out} does not decode to the same pixels")
            stats["jpeg"] += 1
        else:
            shutil.copy2(f, out)
        stats["files"] += 1
        stats["bytes_in"] += f.stat().st_size
        stats["bytes_out"] += out.stat().st_size
    return stats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.mcff_devdata",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--jpegtran", action="store_true", help="re-encode JPEGs losslessly (verified pixel-exact)")
    p.add_argument("--progressive", action="store_true", help="also make them progressive (usually smaller)")
    args = p.parse_args(argv)
    if args.dst.exists():
        raise ValueError(f"{args.dst} exists; remove it first")
    stats = copy_tree(args.src, args.dst, args.jpegtran, args.progressive)
    print(f"{args.name}: {stats} ({stats['bytes_out'] / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
