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
    cfg = load_config(args.config, [*args.overrides, *extra])
    result = train(cfg, progress=not args.no_progress, allow_change=args.allow_change)
    shown = {k: round(v, 4) for k, v in result.metrics.items() if not k.startswith(("AP_", "AP50_"))}
    print(f"run folder: {result.run_dir}\nbest: {result.best}\nmetrics: {shown}")
    return 0
