"""``kdinspect predict``: run a checkpoint on images or folders."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kdinspect.cli.common import add_device, add_overrides

NAME = "predict"
HELP = (
    "predict with a checkpoint (.safetensors) or an exported model (.onnx/.xml) on images, folders (or videos "
    "for exported models): JSON results, overlays, masks"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .safetensors checkpoint, or an exported .onnx / OpenVINO .xml")
    p.add_argument("source", help="image file, folder or glob pattern (exported models: also a video file)")
    p.add_argument("--out", default=None, help="output folder (default: <checkpoint folder>/predict)")
    p.add_argument(
        "--conf", type=float, default=None, help="detection score threshold (default 0.25, or the exported model's)"
    )
    p.add_argument("--threads", type=int, default=None, help="exported models: inference threads")
    p.add_argument("--video-stride", type=int, default=1, help="exported models: every N-th video frame")
    p.add_argument("--mask-thr", type=float, default=0.5, help="segmentation probability threshold")
    p.add_argument("--no-overlays", action="store_true")
    add_overrides(p)
    add_device(p)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(args.model).parent / "predict"
    if Path(args.model).suffix in (".onnx", ".xml"):
        from kdinspect.deploy.predict import predict_files

        if args.overrides:
            raise ValueError(
                f"--set applies to checkpoints; {args.model} is an exported model (its settings were fixed by "
                "`kdinspect export --set ...`)"
            )

        results = predict_files(
            args.model,
            args.source,
            out,
            args.conf,
            args.mask_thr,
            not args.no_overlays,
            args.threads,
            args.video_stride,
        )
    else:
        from kdinspect.predictor import predict

        results = predict(
            args.model,
            args.source,
            out,
            0.25 if args.conf is None else args.conf,
            args.mask_thr,
            not args.no_overlays,
            args.device or "cpu",
            args.overrides,
        )
    for r in results:
        summary = {k: v for k, v in r.items() if k in ("image", "error", "defect_ratio")}
        if "detections" in r:
            summary["detections"] = len(r["detections"])
        print(json.dumps(summary))
    print(f"results: {out / 'results.json'}")
    return 0
