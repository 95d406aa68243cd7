"""Segmenter end to end against YOLO11n-seg (one command): both at the same input size, on the same video, in one run.

    python -m benchmarks.deploy_seg_peer --mcff benchmarks/work/deploy_models/mcff_student/last.safetensors

Ours: each ``--mcff`` checkpoint (several share the run, the video and the peer's numbers; the first sets the input size
and the others must match it), exported and checked by ``export_checkpoint`` (PyTorch vs runtime on real images, F1
before and after), run by kdinspect's runtime (ONNX Runtime FP32, and OpenVINO bf16 when installed) with the stream's
steps per frame: decode, resize, inference, overlay, JPEG. The peer: YOLO11n-seg from ``yolo11n-seg.yaml`` (random init:
latency only, one class) exported by Ultralytics at the same input size, run (a) with the same host steps (ONNX Runtime,
NMS, instance masks merged into one defect map, the same overlay and JPEG) at each thread count and (b) through
Ultralytics' own ``predict`` + ``plot``. Writes ``benchmarks/results/<name>.json`` and ``.md``. Timings need the whole
machine: run it under ``tools/cpu-whole``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import deploy_measure as dm
from benchmarks.common import REPO
from benchmarks.common.measure import (
    LATENCY_IMAGES,
    TIMED_RUNS,
    WARMUP_RUNS,
    count_flops,
    count_params,
    image_inputs,
    latency_method,
)
from benchmarks.common.results import method_lines, provenance, write_results
from kdinspect.deploy.runtime import OrtModel
from kdinspect.engine.checkpoint import load_model
from kdinspect.export.api import export_checkpoint
from kdinspect.export.check import load_val_subset
from kdinspect.export.onnx import inference_module

logger = logging.getLogger("bench.deploy_seg_peer")


def _ours(
    ckpt: Path, wd: Path, args: argparse.Namespace, video_size: tuple[Path, tuple[int, int]] | None = None
) -> tuple[dict[str, Any], Path, tuple[int, int]]:
    """Export, check and time one checkpoint; the first one (``video_size`` None) makes the video and sets the size."""
    loaded = load_model(ckpt)
    if loaded.kind != "segmentation":
        raise ValueError(f"{ckpt} is a {loaded.kind} checkpoint; this benchmark compares segmenters")
    samples = load_val_subset(loaded, args.video_frames)
    size = dm.input_size(loaded, samples)
    if video_size is not None and size != video_size[1]:
        raise ValueError(f"{ckpt} evaluates at {size}, the first checkpoint at {video_size[1]}: compare one size")
    wd = wd / loaded.cfg.train.name
    wd.mkdir(parents=True, exist_ok=True)
    check = export_checkpoint(
        ckpt, wd / "model.onnx", imgsz=size, metric_images=args.metric_images, openvino=dm.has_openvino(), threads=1
    )
    if video_size is None:
        video = dm.make_video([Path(s.meta.path) for s in samples], wd.parent / "video.mp4")
    else:
        video = video_size[0]
    runtimes = {"onnx_fp32": (wd / "model.onnx", "f32")}
    if dm.has_openvino():
        runtimes["openvino_bf16"] = (wd / "model_openvino" / "model.xml", "bf16")
    e2e = {
        f"{k}_{t}t": dm.e2e_per_frame(video, dm.draw_and_encode(OrtModel(path, threads=t, ov_precision=prec)))
        for k, (path, prec) in runtimes.items()
        for t in args.threads
    }
    out = {
        "checkpoint": str(ckpt),
        "model": loaded.cfg.model.name,
        "params": count_params(loaded.model),
        "gflops": round(count_flops(inference_module(loaded.model, loaded.kind, True), size), 3),
        "export_check": check,
        "e2e_per_frame": e2e,
    }
    return out, video, size


def _peer(size: tuple[int, int], video: Path, wd: Path, args: argparse.Namespace) -> dict[str, Any]:
    path = dm.export_yolo11n(1, size, wd / "yolo11n_seg", variant="-seg")
    x1 = image_inputs(dm.video_frames(video, LATENCY_IMAGES), size)  # the same real test images as ours
    out: dict[str, Any] = {"onnx": str(path), "init": "random (yolo11n-seg.yaml), 1 class", "nc": 1}
    out["size_mb"] = round(path.stat().st_size / 1e6, 3)
    try:
        from ultralytics import YOLO

        out["gflops"] = round(count_flops(YOLO(str(path.parent / "nc1" / "yolo11n-seg.yaml")).model, size), 3)
    except Exception as err:  # the FLOP count is context, not the measurement
        logger.warning("YOLO11n-seg FLOP count failed: %r", err)
    for t in args.threads:
        out[f"ort_{t}t"] = dm.latency("onnx", path, t, x1, None, args.runs)
        yolo = dm.YoloSegOnnx(path, size, 1, t)
        out[f"e2e_same_pipeline_{t}t"] = dm.e2e_per_frame(
            video, lambda rgb, y=yolo: dm.encode_jpeg(dm.render(rgb, y.predict(rgb), ["defect"]))
        )
        out[f"instances_per_frame_{t}t"] = round(float(np.mean(yolo.instances)), 2) if yolo.instances else 0.0
    out["e2e_ultralytics_predict_plot"] = dm.ultralytics_e2e(path, video, size, task="segment")
    return out


def _markdown(doc: dict[str, Any]) -> str:
    peer = doc["yolo11n_seg"]
    h, w = doc["input_size"]
    rows, described = [], []
    for ours in doc["ours"]:
        for t in doc["threads"]:
            p = peer[f"e2e_same_pipeline_{t}t"]["median_ms"]
            for k in (k for k in ours["e2e_per_frame"] if k.endswith(f"_{t}t")):
                o = ours["e2e_per_frame"][k]["median_ms"]
                rows.append(f"| {t} | {ours['model']} {k[: -len(f'_{t}t')]} | {o:.2f} | {p:.2f} | {p / o:.3f} |")
        mc = ours["export_check"].get("metric_check", {})
        described.append(
            f"Ours: `{ours['model']}` ({ours['params']:,} params, {ours['gflops']} GFLOPs), checkpoint "
            f"`{ours['checkpoint']}`; export check F1 {mc.get('pytorch', '?')} (PyTorch) vs {mc.get('onnx', '?')} "
            f"(ONNX) on {mc.get('images', '?')} images."
        )
    return "\n".join(
        [
            f"# Segmenter end to end vs YOLO11n-seg ({h}x{w} input, this CPU)",
            "",
            f"Command: `{doc['command']}`  ",
            f"Commit: `{doc['git_commit']}`  ",
            f"CPU: {doc['environment'].get('cpu', '?')}; threads measured: {doc['threads']}"
            + (
                "; measured FP32 peak "
                + " / ".join(str(doc["cpu_peak"].get(f"measured_gflops_{t}t", "?")) for t in doc["threads"])
                + " GFLOP/s"
                if "cpu_peak" in doc
                else ""
            )
            + "  ",
            f"Wall time {doc['wall_s']} s, peak RSS {doc['peak_rss_mb']} MB. Deterministic inputs; no sampling.",
            "",
            *method_lines(doc),
            *[f"{d}  " for d in described],
            f"YOLO11n-seg: {peer['init']}, {peer.get('gflops', '?')} GFLOPs at this size, {peer['size_mb']} MB.",
            "",
            "Per frame, median ms: decode, resize, inference, (peer: NMS and instance masks), overlay, JPEG.",
            "",
            "| threads | ours | ours ms | YOLO11n-seg same pipeline ms | YOLO11n-seg / ours |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"YOLO11n-seg through Ultralytics' own `predict` + `plot` (its default threads): "
            f"{peer['e2e_ultralytics_predict_plot']['median_ms']:.2f} ms. Raw ONNX Runtime latency of YOLO11n-seg: "
            + ", ".join(f"{peer[f'ort_{t}t']['batch1']['median_ms']:.2f} ms at {t} thread(s)" for t in doc["threads"])
            + ". Instances kept per frame by the random-init peer: "
            + ", ".join(str(peer[f"instances_per_frame_{t}t"]) for t in doc["threads"])
            + " (its mask assembly cost grows with them; trained weights find a few per frame).",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.deploy_seg_peer", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--mcff",
        nargs="+",
        default=["benchmarks/work/deploy_models/mcff_student/last.safetensors"],
        help="our segmenter checkpoints (one run, one video, one peer measurement)",
    )
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument(
        "--runs",
        type=int,
        default=TIMED_RUNS,
        help=f"timed runs of the peer's raw latency (after {WARMUP_RUNS} warm-up)",
    )
    p.add_argument("--metric-images", type=int, default=16, help="validation images for the export's F1 check")
    p.add_argument("--video-frames", type=int, default=40)
    p.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "deploy_seg_peer"))
    p.add_argument("--name", default="deploy_seg_peer", help="results file stem under benchmarks/results/")
    args = p.parse_args(argv)
    from kdinspect.utils.env import require_clean_tree

    require_clean_tree(REPO)  # results are written from a committed tree only
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    t0 = time.time()
    wd = Path(args.work)
    wd.mkdir(parents=True, exist_ok=True)
    peak = dm.cpu_peak(args.threads)  # this run's FP32 matmul peak: compares the VM's speed across days
    first, video, size = _ours(Path(args.mcff[0]), wd, args)
    ours = [first] + [_ours(Path(c), wd, args, (video, size))[0] for c in args.mcff[1:]]
    peer = _peer(size, video, wd, args)
    doc = {
        **provenance("benchmarks.deploy_seg_peer", argv),
        "threads": args.threads,
        "latency_method": latency_method(args.runs, args.threads),
        "cpu_peak": peak,
        "input_size": list(size),
        "video": {"path": str(video), "frames": args.video_frames},
        "ours": ours,
        "yolo11n_seg": peer,
    }
    write_results(args.name, doc, _markdown, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
