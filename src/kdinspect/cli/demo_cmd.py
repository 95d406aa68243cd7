"""``kdinspect demo``: the end-to-end job on built-in synthetic data (no download)."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = (
    "end-to-end demo on generated data: teacher (complete masks) -> student with and without distillation "
    "(incomplete masks) -> evaluation, latency, overlays -> results table"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="output folder (data, runs, overlays/, report.md)")
    p.add_argument("--epochs", type=int, default=30, help="training epochs of each of the three models")
    p.add_argument("--threads", type=int, default=0, help="torch threads for training (0 = all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--label-keep",
        type=float,
        default=0.1,
        help="share of 8x8 tiles whose cracks the students' training masks keep (1 = complete masks)",
    )


def run(args: argparse.Namespace) -> int:
    from kdinspect.demo import run_demo

    report = run_demo(args.out, args.epochs, args.threads, args.seed, args.label_keep)
    print(report["table"])
    print(f"report: {args.out}/report.md, overlays: {args.out}/overlays/")
    return 0
