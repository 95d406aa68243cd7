"""``kdinspect softlabels``: MCFF-L step 2, store a trained teacher's soft labels per image for offline distillation."""

from __future__ import annotations

import argparse
import json

NAME = "softlabels"
HELP = "write an MCFF-L teacher's soft labels (h, x, y, mix at temperature T1) for every image of a split"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from kdinspect.cli.common import add_device, add_overrides

    p.add_argument("teacher", help="checkpoint of a trained MCFF-L teacher (.safetensors)")
    p.add_argument("--out", required=True, help="soft-label folder (png: one sub-folder per output)")
    p.add_argument("--t1", type=float, default=10.0, help="soft-label temperature T1 (paper: 5, 10 or 15)")
    p.add_argument("--format", dest="fmt", default="png", choices=["png", "npy"], help="8-bit PNG or float16 .npy")
    p.add_argument("--split", default="train", choices=["train", "val"], help="configured split to label")
    p.add_argument("--shard", default="0/1", help="K/N: label only every N-th image starting at K (parallel runs)")
    add_overrides(p)
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from kdinspect.distill.mcff_softlabels import generate_soft_labels

    try:
        shard, num_shards = (int(v) for v in args.shard.split("/"))
    except ValueError as err:
        raise ValueError(f"--shard must look like K/N (e.g. 0/2), got {args.shard!r}") from err
    dirs = generate_soft_labels(
        args.teacher, args.out, args.t1, args.fmt, args.split, args.overrides, args.device or "cpu", shard, num_shards
    )
    print(json.dumps({"data.params.soft_labels": dirs}, indent=2))
    return 0
