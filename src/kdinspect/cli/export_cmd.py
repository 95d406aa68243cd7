"""``kdinspect export``: ONNX export with a built-in PyTorch-vs-runtime check on real images."""

from __future__ import annotations

import argparse
import json

NAME = "export"
HELP = "export a checkpoint to ONNX and verify it against PyTorch on validation images"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a .safetensors checkpoint")
    p.add_argument("--out", default=None, help="output .onnx (default: next to the checkpoint)")
    p.add_argument("--imgsz", type=int, default=None, help="square input size (default: from the run config)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--dynamic", action="store_true", help="dynamic batch axis")
    p.add_argument("--no-nms", action="store_true", help="detectors: leave NMS to the runtime (outputs boxes/scores)")
    p.add_argument("--atol", type=float, default=1e-3, help="max abs difference accepted by the check")


def run(args: argparse.Namespace) -> int:
    from kdinspect.export.api import export_checkpoint

    report = export_checkpoint(
        args.checkpoint, args.out, args.imgsz, args.opset, args.dynamic, not args.no_nms, atol=args.atol
    )
    print(json.dumps(report, indent=2))
    return 0
