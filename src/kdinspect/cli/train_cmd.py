"""``kdinspect train``: train a model (and distil it from a teacher checkpoint)."""

from __future__ import annotations

import argparse

from kdinspect.cli.common import add_device, add_overrides

NAME = "train"
HELP = "train a model from a run YAML; name a teacher checkpoint to distil (DDP under torchrun)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default=None, help="run YAML (configs/...); default: built-in defaults")
    add_overrides(p)
    p.add_argument("--name", default=None, help="run folder name (train.name)")
    p.add_argument("--out-dir", default=None, help="parent of run folders (train.out_dir)")
    p.add_argument("--teacher", default=None, help="teacher checkpoint for distillation (distill.teacher)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run from its last.safetensors (settings that differ from the stored ones are refused)",
    )
    p.add_argument(
        "--allow-change",
        action="store_true",
        help="with --resume: continue with changed settings (e.g. more epochs); recorded in resume_changes.json",
    )
    p.add_argument(
        "--exist-ok",
        action="store_true",
        help="start afresh in an existing run folder (default: a folder that holds a run gives NAME-2, NAME-3, ...)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from kdinspect.api import train
    from kdinspect.config import load_config

    extra = [
        f"train.{k}={v}"
        for k, v in (("name", args.name), ("out_dir", args.out_dir), ("device", args.device))
        if v is not None
    ]
    extra += [f"distill.teacher={args.teacher}"] if args.teacher else []
    extra += ["train.resume=true"] if args.resume else []
    extra += ["train.exist_ok=true"] if args.exist_ok else []
    cfg = load_config(args.config, [*args.overrides, *extra])
    result = train(cfg, progress=not args.no_progress, allow_change=args.allow_change)
    from kdinspect.evaluation.report import summary_table

    print(f"run folder: {result.run_dir}\nbest checkpoint: {result.best}")
    if result.metrics:
        print(f"validation of the best checkpoint (main = {result.metrics.get('main', float('nan')):.4f}):")
        print("\n".join(summary_table(result.metrics)))
    return 0
