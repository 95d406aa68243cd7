"""``kdinspect eval``: evaluate a checkpoint on its (or another) dataset split."""

from __future__ import annotations

import argparse
from pathlib import Path

from kdinspect.cli.common import add_device, add_overrides

NAME = "eval"
HELP = "evaluate a checkpoint (COCO mAP / per-class AP / PR / confusion for detectors; F1/IoU/ODS/OIS for segmenters)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a .safetensors checkpoint written by kdinspect train")
    add_overrides(p)
    p.add_argument("--split", default="val", choices=["val", "train"], help="which configured split to evaluate")
    p.add_argument("--out", default=None, help="report folder (default: <checkpoint folder>/eval-<split>)")
    p.add_argument("--batch-size", type=int, default=0)
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from kdinspect.api import evaluate

    out = Path(args.out) if args.out else Path(args.checkpoint).parent / f"eval-{args.split}"
    metrics = evaluate(args.checkpoint, args.overrides, args.split, out, args.device or "cpu", args.batch_size)
    from kdinspect.evaluation.report import summary_table

    print("\n".join(summary_table(metrics)))
    print(
        f"main = {metrics.get('main', float('nan')):.4f}; every metric: {out / 'metrics.json'}; curves and plots: {out}"
    )
    return 0
