"""``kdinspect info``: versions, threads, devices, and the names a config may use."""

from __future__ import annotations

import argparse
import json

NAME = "info"
HELP = "print versions, threads and devices, and the available models, distillers and dataset formats"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from kdinspect.data import DATASETS
    from kdinspect.distill import DISTILLERS
    from kdinspect.models import MODELS
    from kdinspect.models.backbones import BACKBONES, find_weights
    from kdinspect.utils.env import environment_info

    info = environment_info()
    info["models"] = {name: f"[{spec.task}] {spec.description}" for name, spec in sorted(MODELS.items())}
    info["distillers"] = sorted(DISTILLERS)
    info["dataset_formats"] = sorted(DATASETS)
    info["backbones"] = {
        n: ("ImageNet weights found" if find_weights(n) else "no local ImageNet weights") for n in sorted(BACKBONES)
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key in ("kdinspect", "python", "platform", "cpu", "cpu_count", "torch_threads", "cuda", "devices"):
        print(f"{key:>15}: {info[key]}")
    print(f"{'packages':>15}: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    for section in ("models", "backbones"):
        print(f"{section}:")
        for k, v in info[section].items():
            print(f"  {k:<22} {v}")
    print(f"distillers: {', '.join(info['distillers'])}")
    print(f"dataset formats: {', '.join(info['dataset_formats'])}")
    return 0
