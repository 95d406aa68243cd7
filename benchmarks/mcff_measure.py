"""Per-checkpoint measurements for ``python -m benchmarks.mcff``: parameters, GFLOPs, ONNX Runtime CPU latency,
overlays.

    python -m benchmarks.mcff_measure --out measure.json --size 448 ROW=CHECKPOINT [ROW=CHECKPOINT ...]

Run it under ``tools/cpu-whole`` so that nothing else runs beside the latency loop. For each checkpoint:
trainable parameters of the deployed network, GFLOPs of one 448x448 forward pass of the export module
(``torch.utils.flop_counter``: 2 FLOPs per multiply-add, convolutions and matmuls), ONNX export at 448x448 (verified
against PyTorch on two test images), and the median ONNX Runtime latency (batch 1) with 1 and 2 intra-op threads,
timed by the shared timer (``benchmarks.common.measure``) on the checkpoint's own test images resized to 448x448.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import REPO
from benchmarks.common.measure import LATENCY_IMAGES, TIMED_RUNS, WARMUP_RUNS, count_flops, image_inputs, ort_latency
from kdinspect.engine.checkpoint import load_model
from kdinspect.export.api import export_checkpoint
from kdinspect.export.check import load_val_subset
from kdinspect.export.onnx import inference_module
from kdinspect.utils.io import write_json


def measure(row: str, ckpt: Path, work: Path, size: int, runs: int, slow_runs: int) -> dict[str, Any]:
    """All measurements of one checkpoint (``slow_runs`` latency repeats for models over 100 GFLOPs)."""
    loaded = load_model(ckpt)
    model = loaded.model.eval()
    module = inference_module(model, loaded.kind)
    out: dict[str, Any] = {
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "gflops": count_flops(module, size),
    }
    onnx_path = work / "onnx" / f"{row}.onnx"
    # a latency graph at the benchmark's square size: its outputs are checked against PyTorch on real images; the
    # metric check is left out because it would measure the resize to 448x448, not the export (kdinspect export
    # runs it at the dataset's own size)
    report = export_checkpoint(ckpt, onnx_path, imgsz=size, verify_images=2, metric_images=0)
    parity = report.get("parity", {})
    out["onnx_max_abs_diff"] = max((v for k, v in parity.items() if k.startswith("max_abs_diff")), default=None)
    n = slow_runs if out["gflops"] > 100 else runs
    inputs = image_inputs([s.meta.path for s in load_val_subset(loaded, LATENCY_IMAGES)], (size, size))
    for threads in (1, 2):
        lat = ort_latency(onnx_path, inputs, threads, n)
        out[f"latency_ms_{threads}t"] = lat["median_ms"]
        out[f"latency_detail_{threads}t"] = lat
    return out


def overlays(row: str, ckpt: Path, images: list[Path], dest: Path, work: Path) -> list[str]:
    """Prediction overlays (crack pixels at p >= 0.5 highlighted) of a few test images, copied to ``dest``."""
    from kdinspect.predictor import predict

    written = []
    tmp = work / "predict" / row
    for img in images:
        for res in predict(ckpt, img, tmp, save_overlays=True):
            if res.get("overlay"):
                target = dest / f"{row}_{Path(res['image']).stem}.jpg"
                Path(res["overlay"]).replace(target)
                written.append(str(target.relative_to(REPO)) if target.is_relative_to(REPO) else str(target))
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.mcff_measure",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("items", nargs="+", help="ROW=CHECKPOINT")
    p.add_argument("--out", required=True, help="JSON file with one entry per row")
    p.add_argument("--work", required=True, help="folder for the ONNX files")
    p.add_argument("--size", type=int, default=448)
    p.add_argument(
        "--runs", type=int, default=TIMED_RUNS, help=f"latency repeats (median reported, after {WARMUP_RUNS} warm-up)"
    )
    p.add_argument("--slow-runs", type=int, default=5, help="latency repeats for models over 100 GFLOPs")
    p.add_argument("--untrained", nargs="*", default=[], help="rows whose checkpoint has random weights (no overlays)")
    p.add_argument("--overlay-images", nargs="*", default=[], help="test images to draw overlays of")
    p.add_argument("--overlay-dir", default="", help="where overlay JPEGs go")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.is_file() else {}
    for item in args.items:
        row, ckpt = item.split("=", 1)
        if row in results:
            continue
        t0 = time.perf_counter()
        results[row] = measure(row, Path(ckpt), Path(args.work), args.size, args.runs, args.slow_runs)
        if row in args.untrained:
            results[row]["weights"] = "untrained"
        elif args.overlay_images:
            dest = Path(args.overlay_dir)
            dest.mkdir(parents=True, exist_ok=True)
            images = [Path(i) for i in args.overlay_images]
            results[row]["overlays"] = overlays(row, Path(ckpt), images, dest, Path(args.work))
        results[row]["measure_wall_s"] = time.perf_counter() - t0
        write_json(out_path, results)
        print(f"[mcff-measure] {row}: {json.dumps({k: v for k, v in results[row].items() if 'detail' not in k})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
