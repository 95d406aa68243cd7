"""``kdinspect add-classes``: add new classes to a trained detector from a few labelled images (DKAN fine-tuning)."""

from __future__ import annotations

import argparse
import json

NAME = "add-classes"
HELP = "add new defect classes to a trained detector from a small labelled folder, keeping the old classes (DKAN)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="trained detector (.safetensors, model faster_rcnn_fpn)")
    p.add_argument("--data", required=True, help="small labelled folder with the new classes")
    p.add_argument("--format", default="voc", help="reader of --data (voc, yolo, coco, ...)")
    p.add_argument("--split", default="all", help="split of --data to train on")
    p.add_argument("--classes", default="", help="comma-separated classes to add (default: all unknown ones)")
    p.add_argument("--eval-data", default=None, help="folder labelled with old and new classes (before/after AP)")
    p.add_argument("--eval-format", default=None, help="reader of --eval-data (default: --format)")
    p.add_argument("--eval-split", default="all", help="split of --eval-data")
    p.add_argument("--method", default="dkan", choices=["dkan", "tfa", "ft"], help="fine-tuning method")
    p.add_argument("--iters", type=int, default=500, help="fine-tuning iterations")
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lka-mode", default="unaligned", choices=["unaligned", "aligned"])
    p.add_argument("--fka-tau", type=float, default=1.0)
    p.add_argument("--fka-weight", type=float, default=5.0)
    p.add_argument("--out-dir", default="runs")
    p.add_argument("--name", default="add-classes")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from kdinspect.fewshot.add_classes import add_classes

    distill = {"lka_mode": args.lka_mode, "fka_tau": args.fka_tau, "fka_weight": args.fka_weight}
    res = add_classes(
        args.checkpoint,
        args.data,
        args.format,
        args.split,
        [c.strip() for c in args.classes.split(",") if c.strip()] or None,
        args.eval_data,
        args.eval_format,
        args.eval_split,
        args.out_dir,
        args.name,
        args.method,
        args.iters,
        args.lr,
        args.batch_size,
        distill if args.method == "dkan" else {},
        args.seed,
        args.threads,
        args.device,
        not args.no_progress,
    )
    print(
        json.dumps(
            {
                "checkpoint": str(res.checkpoint),
                "classes": res.classes,
                "new_classes": res.new_classes,
                "before": res.before,
                "after": res.after,
            },
            indent=2,
        )
    )
    return 0
