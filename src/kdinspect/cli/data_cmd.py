"""``kdinspect data``: ``check`` a dataset folder, or ``synth`` a synthetic one.

``cli/main.py`` registers it like every subcommand (``NAME``, ``HELP``, ``add_arguments``, ``run``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["HELP", "NAME", "add_arguments", "run", "run_data"]

NAME = "data"
HELP = "dataset tools: 'check' reports counts, image sizes and every problem found; 'synth' writes synthetic data"


def _split_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``check`` and ``synth`` actions to the ``data`` command's parser."""
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="report counts, image sizes and every problem of a dataset folder")
    check.add_argument("path", type=Path, help="dataset folder")
    check.add_argument("--format", dest="fmt", default=None, help="reader name (default: detected from the layout)")
    check.add_argument(
        "--split",
        dest="splits",
        action="append",
        default=None,
        help="split to check (repeatable or comma-separated; default: every split the folder defines)",
    )
    check.add_argument(
        "--classes",
        type=_split_list,
        default=None,
        help="expected class names, comma-separated (other names are errors; default: the union of the splits' names, "
        "with classes in one split only or rare reported as unexpected_class warnings)",
    )
    check.add_argument(
        "--no-decode",
        dest="decode",
        action="store_false",
        help="read annotations and image headers only (faster; misses corrupt pixel data)",
    )
    check.add_argument(
        "--reference",
        default="",
        metavar="auto|FILE",
        help="also check every image's reference image (golden board / template; docs/template.md): 'auto' (DeepPCB "
        "templates, or references/ beside images/ with the same stem) or one reference file; missing references are "
        "missing_reference errors, size-mismatched ones reference_size_mismatch warnings",
    )
    check.add_argument("--json", type=Path, default=None, help="also write the report as JSON to this file")
    check.add_argument("--quiet", action="store_true", help="print only the summary line")
    synth = sub.add_parser("synth", help="write a seeded synthetic dataset")
    synth.add_argument("out", type=Path, help="output folder")
    synth.add_argument("--kind", choices=["detection", "segmentation"], default="detection")
    synth.add_argument(
        "--format", dest="fmt", choices=["voc", "coco", "yolo"], default="voc", help="detection annotation format"
    )
    synth.add_argument("--n-train", type=int, default=64)
    synth.add_argument("--n-val", type=int, default=16)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--imgsz", type=int, default=128, help="detection: square image size")
    synth.add_argument(
        "--paired", action="store_true", help="detection: also write each image's defect-free reference (references/)"
    )
    synth.add_argument(
        "--size", type=int, nargs=2, default=(128, 160), metavar=("H", "W"), help="segmentation: image size"
    )


def _run_check(args: argparse.Namespace) -> int:
    from kdinspect.data.check import check_dataset

    splits = [s for item in args.splits for s in _split_list(item)] if args.splits else None
    params = {"reference": args.reference} if args.reference else None
    report = check_dataset(
        args.path, fmt=args.fmt, splits=splits, decode=args.decode, classes=args.classes, params=params
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(report.to_json())
    text = report.to_text()
    if args.quiet:
        text = text.splitlines()[-1]
    sys.stdout.write(text + "\n")
    return 0 if report.ok else 1


def _run_synth(args: argparse.Namespace) -> int:
    from kdinspect.data.synthetic import generate_detection_dataset, generate_segmentation_dataset

    if args.kind == "detection":
        generate_detection_dataset(
            args.out, args.n_train, args.n_val, args.seed, imgsz=args.imgsz, fmt=args.fmt, paired=args.paired
        )
    else:
        generate_segmentation_dataset(args.out, args.n_train, args.n_val, args.seed, size=tuple(args.size))
    sys.stdout.write(f"wrote {args.kind} data to {args.out}\n")
    return 0


def run_data(args: argparse.Namespace) -> int:
    """Run ``kdinspect data ...``; returns the exit code (1 when ``check`` finds errors)."""
    if args.data_command == "check":
        return _run_check(args)
    return _run_synth(args)


run = run_data
