"""``kdinspect predict``: run a checkpoint on images or folders."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kdinspect.cli.common import add_device

NAME = "predict"
HELP = "predict on an image, folder or glob: JSON results, overlay images (and masks for segmenters)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .safetensors checkpoint")
    p.add_argument("source", help="image file, folder or glob pattern")
    p.add_argument("--out", default=None, help="output folder (default: <checkpoint folder>/predict)")
    p.add_argument("--conf", type=float, default=0.25, help="detection score threshold")
    p.add_argument("--mask-thr", type=float, default=0.5, help="segmentation probability threshold")
    p.add_argument("--no-overlays", action="store_true")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from kdinspect.predictor import predict

    out = Path(args.out) if args.out else Path(args.model).parent / "predict"
    results = predict(
        args.model, args.source, out, args.conf, args.mask_thr, not args.no_overlays, args.device or "cpu"
    )
    for r in results:
        summary = {k: v for k, v in r.items() if k in ("image", "error", "defect_ratio")}
        if "detections" in r:
            summary["detections"] = len(r["detections"])
        print(json.dumps(summary))
    print(f"results: {out / 'results.json'}")
    return 0
