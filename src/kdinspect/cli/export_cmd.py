"""``kdinspect export``: ONNX (optionally INT8 and OpenVINO IR), each checked against PyTorch on real images."""

from __future__ import annotations

import argparse
import json

from kdinspect.cli.common import add_overrides

NAME = "export"
HELP = "export a checkpoint to ONNX (+ INT8, OpenVINO) and verify it against PyTorch on validation images"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a .safetensors checkpoint")
    p.add_argument("--out", default=None, help="output .onnx (default: next to the checkpoint)")
    p.add_argument(
        "--imgsz",
        default=None,
        help="input size N or HxW (default: the size the model was validated at; see docs/deploy.md)",
    )
    p.add_argument("--opset", type=int, default=17)
    p.add_argument(
        "--dynamic",
        action="store_true",
        help="dynamic batch axis (default: batch 1; Faster R-CNN exports at batch 1 only)",
    )
    p.add_argument("--no-nms", action="store_true", help="detectors: leave NMS to the runtime (outputs boxes/scores)")
    p.add_argument("--atol", type=float, default=1e-3, help="max abs difference accepted by the parity check")
    p.add_argument("--verify-images", type=int, default=8, help="real images for the parity check")
    p.add_argument("--metric-images", type=int, default=32, help="validation images for the metric check (0 = off)")
    p.add_argument("--max-drop", type=float, default=0.01, help="largest accepted metric drop (FP32, OpenVINO)")
    p.add_argument(
        "--int8",
        choices=["qdq", "qoperator"],
        default=None,
        help="also write an INT8 model (ONNX Runtime static quantization); kept only if faster here",
    )
    p.add_argument("--calib-images", type=int, default=32, help="training images for INT8 calibration")
    p.add_argument("--max-int8-drop", type=float, default=0.02, help="largest accepted metric drop for INT8")
    p.add_argument("--keep-slower-int8", action="store_true", help="keep INT8 even if it is slower than FP32")
    p.add_argument("--openvino", action="store_true", help="also write an OpenVINO IR (needs openvino)")
    p.add_argument("--threads", type=int, default=1, help="runtime threads for the checks and INT8 timing")
    p.add_argument("--data-root", default=None, help="dataset folder for the checks (default: from the run config)")
    add_overrides(p)


def run(args: argparse.Namespace) -> int:
    from kdinspect.export.api import export_checkpoint

    report = export_checkpoint(
        args.checkpoint,
        args.out,
        args.imgsz,
        args.opset,
        args.dynamic,
        not args.no_nms,
        verify_images=args.verify_images,
        atol=args.atol,
        metric_images=args.metric_images,
        max_metric_drop=args.max_drop,
        int8=args.int8,
        calib_images=args.calib_images,
        max_int8_drop=args.max_int8_drop,
        keep_slower_int8=args.keep_slower_int8,
        openvino=args.openvino,
        threads=args.threads,
        data_root=args.data_root,
        overrides=args.overrides,
    )
    report.get("metric_check", {}).pop("details", None)
    print(json.dumps(report, indent=2))
    return 0
