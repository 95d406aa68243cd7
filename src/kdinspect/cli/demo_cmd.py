"""``kdinspect demo``: the end-to-end job on built-in synthetic data (no download)."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = "end-to-end demo on generated data: teacher -> distilled student -> evaluation -> results table"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="output folder")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from kdinspect.demo import run_demo

    report = run_demo(args.out, args.epochs, args.threads, args.seed)
    print(report["table"])
    print(f"report: {args.out}/report.md")
    return 0
