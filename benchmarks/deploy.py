"""Deployment benchmark (one command): PyTorch eager vs ONNX Runtime FP32 vs INT8 (QDQ, QOperator) vs OpenVINO for
each trained model type, end-to-end per-frame time against YOLO11n at equal input size, the ZeroMQ stream and the
HTTP service. Writes ``benchmarks/results/deploy.json`` and ``deploy.md``.

    tools/cpu-whole python -m benchmarks.deploy \\
        --hsd benchmarks/work/hsd/neu-det/student_hsd_s0/last.safetensors \\
        --hsd-lite benchmarks/work/hsd/neu-det-lite/student_hsd_s0/last.safetensors \\
        --mcff benchmarks/work/mcff_deepcrack/runs/deepcrack_student_kd_standard/best.safetensors \\
        --dkan benchmarks/work/dkan_cpu/base/split1/last.safetensors

A model whose checkpoint is missing is skipped (and listed). Timings need the whole machine: run it under
``tools/cpu-whole``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import deploy_measure as dm
from benchmarks import deploy_report
from benchmarks.common import REPO
from benchmarks.common.measure import (
    LATENCY_IMAGES,
    TIMED_RUNS,
    WARMUP_RUNS,
    count_flops,
    count_params,
    image_inputs,
    latency_method,
    time_calls,
)
from benchmarks.common.results import provenance, write_results
from kdinspect.deploy.postprocess import to_input_tensor
from kdinspect.deploy.runtime import OrtModel
from kdinspect.engine.checkpoint import load_model
from kdinspect.export.api import ExportCheckError, export_checkpoint
from kdinspect.export.check import load_val_subset, metric_check
from kdinspect.export.onnx import export_onnx, inference_module
from kdinspect.export.quantize import quantize_onnx
from kdinspect.utils.io import write_json

logger = logging.getLogger("bench.deploy")

DEFAULTS = {
    "hsd": "benchmarks/work/hsd/neu-det/student_hsd_s0/last.safetensors",
    "hsd_lite": "benchmarks/work/hsd/neu-det-lite/student_hsd_s0/last.safetensors",
    "mcff": "benchmarks/work/mcff_deepcrack/runs/deepcrack_student_kd_standard/best.safetensors",
    "dkan": "benchmarks/work/dkan_cpu/base/split1/last.safetensors",
}


def _size_mb(path: Path) -> float:
    """File size in MB (an OpenVINO IR counts its .xml and .bin)."""
    parts = [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]
    return round(sum(p.stat().st_size for p in parts if p.exists()) / 1e6, 3)


def _export_all(loaded: Any, ckpt: Path, wd: Path, size: tuple[int, int], args: argparse.Namespace) -> dict:
    """FP32 static (checked: parity + metric), FP32 dynamic batch, INT8 QDQ / QOperator of both, OpenVINO IR."""
    files: dict[str, dict[str, Path]] = {}
    report: dict[str, Any] = {}
    try:
        report["export_check"] = export_checkpoint(
            ckpt,
            wd / "model.onnx",
            imgsz=size,
            verify_images=8,
            metric_images=args.metric_images,
            openvino=dm.has_openvino(),
            threads=1,
            max_metric_drop=args.max_drop,
        )
    except ExportCheckError as err:  # recorded, not hidden: the report file holds the figures
        report["export_check"] = json.loads((wd / "model.verify.json").read_text()) | {"error": str(err)}
    files["onnx_fp32"] = {"b1": wd / "model.onnx", "dyn": None}
    # a model traced per image (Faster R-CNN) has no dynamic-batch graph: its batch of 8 runs image by image
    if getattr(loaded.model, "supports_dynamic_batch", True):
        export_onnx(
            loaded.model, wd / "model_dyn.onnx", size, loaded.kind, loaded.classes, loaded.cfg.model.name, dynamic=True
        )
        files["onnx_fp32"]["dyn"] = wd / "model_dyn.onnx"
    if dm.has_openvino():
        from kdinspect.export.openvino import export_openvino

        dyn = files["onnx_fp32"]["dyn"]
        files["openvino_fp32"] = {
            "b1": wd / "model_openvino" / "model.xml",
            "dyn": export_openvino(dyn) if dyn is not None else None,
        }
        files["openvino_bf16"] = dict(files["openvino_fp32"])  # the same IR, bf16 compute (OpenVINO's CPU default)
    calib_samples = load_val_subset(loaded, args.calib_images, split="train")
    calib = [
        to_input_tensor([dm.cv2.cvtColor(dm.cv2.imread(s.meta.path), dm.cv2.COLOR_BGR2RGB)], size)
        for s in calib_samples
    ]
    for fmt in ("qdq", "qoperator"):
        files[f"onnx_int8_{fmt}"] = {
            key: quantize_onnx(src, wd / f"model{suffix}.int8_{fmt}.onnx", calib, fmt=fmt) if src else None
            for key, suffix in (("b1", ""), ("dyn", "_dyn"))
            for src in [files["onnx_fp32"][key]]
        }
    report["calibration_images"] = len(calib)
    return {"files": files, "report": report}


def _latencies(
    loaded: Any, files: dict, size: tuple[int, int], x1: list[np.ndarray], x8: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    module = inference_module(loaded.model, loaded.kind, True)
    out: dict[str, Any] = {}
    for t in args.threads:
        out.setdefault("pytorch_eager", {})[f"{t}t"] = dm.latency("pytorch", module, t, x1, x8, args.runs)
        for name, f in files.items():
            res = dm.latency(name, f["b1"], t, x1, None, args.runs)
            try:
                if f["dyn"] is None:  # static batch-1 graph: 8 images one after the other, as the runtime does
                    res["batch8"] = _looped_batch8(name, f["b1"], t, x8, args.runs)
                else:
                    res["batch8"] = dm.latency(name, f["dyn"], t, x1, x8, args.runs)["batch8"]
            except Exception as err:  # e.g. a graph whose dynamic batch fails at run time: recorded, not fatal
                logger.exception("%s %s: batch-8 throughput failed", loaded.cfg.model.name, name)
                res["batch8"] = {"error": repr(err)}
            out.setdefault(name, {})[f"{t}t"] = res
    return out


def _looped_batch8(name: str, path: Path, threads: int, x8: np.ndarray, runs: int) -> dict[str, Any]:
    run = dm.make_runner(name, path, threads)
    t = time_calls(lambda x: [run(x[i : i + 1]) for i in range(len(x))], [x8], WARMUP_RUNS, max(5, runs // 4))
    return t | {"images_per_s": round(8000 / t["median_ms"], 2), "mode": "8 x batch 1 (static-batch graph)"}


def _runtime(name: str, files: dict, threads: int) -> OrtModel:
    return OrtModel(files[name]["b1"], threads=threads, ov_precision="bf16" if name.endswith("bf16") else "f32")


def _fastest_accurate(files: dict, lat: dict, metric: dict, max_drop: float) -> str:
    """The runtime with the lowest 1-thread batch-1 latency among those whose metric drop is within the export
    check's limits (``max_drop`` for FP32, 0.02 for INT8 and bf16)."""
    ok = [k for k in files if metric.get(f"delta_{k}", 0.0) >= -(max_drop if k.endswith("fp32") else 0.02)]
    return min(ok or ["onnx_fp32"], key=lambda k: lat[k]["1t"]["batch1"]["median_ms"])


def bench_model(name: str, ckpt: Path, args: argparse.Namespace, peak: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    wd = Path(args.work) / name
    wd.mkdir(parents=True, exist_ok=True)
    loaded = load_model(ckpt)
    samples = load_val_subset(loaded, max(args.metric_images, args.video_frames))
    size = dm.input_size(loaded, samples)
    exported = _export_all(loaded, ckpt, wd, size, args)
    files = exported["files"]
    int8 = {k: v["b1"] for k, v in files.items() if "int8" in k}
    runtimes: dict[str, Any] = {"onnx_fp32": files["onnx_fp32"]["b1"], **int8}
    if "openvino_fp32" in files:
        xml = files["openvino_fp32"]["b1"]
        runtimes["openvino_fp32"] = xml
        runtimes["openvino_bf16"] = OrtModel(xml, threads=2, score_thr=0.0, ov_precision="bf16")
    metric = metric_check(loaded, runtimes, samples[: args.metric_images], threads=2)
    images = [Path(s.meta.path) for s in samples[: args.video_frames]]
    x1 = image_inputs(images[:LATENCY_IMAGES], size)
    x8 = np.concatenate(image_inputs(images[:8], size))
    lat = _latencies(loaded, files, size, x1, x8, args)
    gflops = count_flops(inference_module(loaded.model, loaded.kind, True), size)
    video = dm.make_video(images, wd / "video.mp4")
    fastest = _fastest_accurate(files, lat, metric, args.max_drop)
    e2e = {
        f"{k}_{t}t": dm.e2e_per_frame(video, dm.draw_and_encode(_runtime(k, files, t)))
        for k in dict.fromkeys(["onnx_fp32", fastest])
        for t in args.threads
    }
    if loaded.kind == "detection":
        # the YOLO11n pipeline's shape: a graph ending at decoded boxes + scores, NMS on the host (OpenCV) at the
        # runtime's display threshold, instead of in-graph NMS over every pair above the model's eval threshold
        raw = wd / "model_raw.onnx"
        try:
            export_onnx(loaded.model, raw, size, loaded.kind, loaded.classes, loaded.cfg.model.name, nms=False)
        except ValueError as err:  # two-stage detectors: NMS is part of the second stage
            logger.info("%s: no host-NMS graph (%s)", name, err)
        else:
            for t in args.threads:
                run = dm.draw_and_encode(OrtModel(raw, threads=t))
                e2e[f"onnx_fp32_host_nms_{t}t"] = dm.e2e_per_frame(video, run)
    stream = dm.stream_bench(_runtime(fastest, files, 1), video, len(images))
    service = dm.service_bench(_runtime(fastest, files, 2), images[:16], args.requests, 8)
    return {
        "checkpoint": str(ckpt),
        "model": loaded.cfg.model.name,
        "task": loaded.kind,
        "classes": loaded.classes,
        "input_size": list(size),
        "params": count_params(loaded.model),
        "gflops": round(gflops, 3),
        "sizes_mb": {k: _size_mb(v["b1"]) for k, v in files.items()},
        "export": exported["report"],
        "metric": metric,
        "latency": lat,
        "fastest_runtime_1t": fastest,
        "e2e_per_frame": e2e | {"video": str(video), "frames": len(images)},
        "stream": stream,
        "service": service,
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def bench_yolo(imgsz: int, nc: int, video: Path, args: argparse.Namespace) -> dict[str, Any]:
    path = dm.export_yolo11n(nc, imgsz, Path(args.work) / "yolo11n")
    x1 = image_inputs(dm.video_frames(video, LATENCY_IMAGES), (imgsz, imgsz))  # the same real test images as ours
    out: dict[str, Any] = {
        "onnx": str(path),
        "imgsz": imgsz,
        "nc": nc,
        "init": "random (yolo11n.yaml)",
        "size_mb": round(path.stat().st_size / 1e6, 3),
    }
    classes = [f"c{i}" for i in range(nc)]
    for t in args.threads:
        out[f"ort_{t}t"] = dm.latency("onnx", path, t, x1, None, args.runs)
        yolo = dm.YoloOnnx(path, imgsz, classes, t)
        out[f"e2e_same_pipeline_{t}t"] = dm.e2e_per_frame(
            video, lambda rgb, y=yolo: dm.encode_jpeg(dm.render(rgb, y.predict(rgb), classes))
        )
    out["e2e_ultralytics_predict_plot"] = dm.ultralytics_e2e(path, video, imgsz)
    # the same INT8 recipe as ours (ORT static QDQ, per-channel, Conv/MatMul only), calibrated on the video's frames
    cap, calib = dm.cv2.VideoCapture(str(video)), []
    while len(calib) < args.calib_images and (frame := cap.read())[0]:
        calib.append(to_input_tensor([dm.cv2.cvtColor(frame[1], dm.cv2.COLOR_BGR2RGB)], (imgsz, imgsz)))
    cap.release()
    q = quantize_onnx(path, path.with_name(path.stem + ".int8_qdq.onnx"), calib, fmt="qdq")
    for t in args.threads:
        out[f"ort_int8_qdq_{t}t"] = dm.latency("onnx", q, t, x1, None, args.runs)
        yolo = dm.YoloOnnx(q, imgsz, classes, t)
        out[f"e2e_same_pipeline_int8_qdq_{t}t"] = dm.e2e_per_frame(
            video, lambda rgb, y=yolo: dm.encode_jpeg(dm.render(rgb, y.predict(rgb), classes))
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.deploy", description=__doc__.split("\n\n")[0])
    for name, default in DEFAULTS.items():
        p.add_argument(f"--{name.replace('_', '-')}", default=default, help=f"{name} checkpoint (default {default})")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument(
        "--runs",
        type=int,
        default=TIMED_RUNS,
        help=f"timed runs per batch-1 latency (after {WARMUP_RUNS} warm-up runs)",
    )
    p.add_argument("--metric-images", type=int, default=100, help="validation images for the metric change")
    p.add_argument("--max-drop", type=float, default=0.01)
    p.add_argument("--calib-images", type=int, default=64, help="training images for INT8 calibration")
    p.add_argument("--video-frames", type=int, default=200)
    p.add_argument("--requests", type=int, default=300, help="HTTP requests (concurrency 8)")
    p.add_argument("--no-yolo", action="store_true")
    p.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "deploy"))
    p.add_argument("--name", default="deploy", help="results file stem under benchmarks/results/")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="keep the models already measured by an interrupted run of the same --name (WORK/NAME.partial.json)",
    )
    args = p.parse_args(argv)
    from kdinspect.utils.env import require_clean_tree

    require_clean_tree(REPO)  # results are written from a committed tree only
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    t0 = time.time()
    peak = dm.cpu_peak(args.threads)
    models: dict[str, Any] = {}
    missing: dict[str, str] = {}
    failed: dict[str, str] = {}
    # each model's figures are saved as soon as they exist, so an interrupted run loses only the model in progress
    partial = Path(args.work) / f"{args.name}.partial.json"
    if args.reuse and partial.is_file():
        models = json.loads(partial.read_text())["models"]
        logger.info("reusing %s from %s", sorted(models), partial)
    for name in DEFAULTS:
        ckpt = Path(getattr(args, name))
        if name in models and models[name]["checkpoint"] == str(ckpt):
            continue
        if not ckpt.is_file():
            missing[name] = str(ckpt)
            logger.warning("%s: checkpoint %s not found, skipped", name, ckpt)
            continue
        logger.info("benchmarking %s (%s)", name, ckpt)
        try:
            models[name] = bench_model(name, ckpt, args, peak)
            write_json(partial, {"models": models})
        except Exception as err:  # one model's failure must not lose the others' measurements
            logger.exception("%s failed", name)
            failed[name] = repr(err)
    yolo = {}
    if not args.no_yolo:
        for res in models.values():
            if res["task"] == "detection" and res["input_size"][0] not in yolo:
                video = Path(res["e2e_per_frame"]["video"])
                try:
                    yolo[res["input_size"][0]] = bench_yolo(res["input_size"][0], len(res["classes"]), video, args)
                except Exception as err:  # recorded in the results instead of losing the other measurements
                    logger.exception("YOLO11n at %d failed", res["input_size"][0])
                    yolo[res["input_size"][0]] = {"error": repr(err)}
    result = {
        **provenance("benchmarks.deploy", argv),
        "threads": args.threads,
        "latency_method": latency_method(args.runs, args.threads),
        "seeds": "deterministic inputs; no sampling",
        "cpu_peak": peak,
        "models": models,
        "missing_checkpoints": missing,
        "failed_models": failed,
        "yolo11n": {str(k): v for k, v in yolo.items()},
    }
    result["summary"] = deploy_report.summarize(result)
    write_results(args.name, result, deploy_report.markdown, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
