"""Where a DKAN detector's CPU time goes, and what fewer test-time proposals buy (one command).

    python -m benchmarks.dkan_profile --checkpoint RUN/last.safetensors --proposals 300 100 50

For each test-time proposal count (the second value of ``model.params.rpn_post_nms_top_n``, changed with the same
``--set`` override that ``kdinspect eval/export`` take): eager PyTorch time per stage (backbone, FPN, RPN, RoI heads)
and of the whole forward at batch 1 on real test images, the ONNX Runtime FP32 latency of the exported graph, and the
VOC07 AP50 on base / novel / all classes over the whole test split. YOLO11n's ONNX graph at the same input size (random
init: latency only) is timed in the same run. Writes ``benchmarks/results/<name>.json`` and ``.md``. Timings need the
whole machine: run it under ``tools/cpu-whole``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torchvision.models.detection.image_list import ImageList

from benchmarks import deploy_measure as dm
from benchmarks.common import REPO
from benchmarks.common.measure import TIMED_RUNS, WARMUP_RUNS, image_inputs, latency_method, ort_latency, time_calls
from benchmarks.common.results import method_lines, provenance, write_results
from kdinspect.api import build_loader
from kdinspect.data import build_dataset
from kdinspect.engine.checkpoint import load_model
from kdinspect.export.check import load_val_subset
from kdinspect.export.onnx import export_onnx
from kdinspect.fewshot.finetune import evaluate_incremental
from kdinspect.tasks.detection import DetectionTask

logger = logging.getLogger("dkan_profile")
STAGES = ("backbone", "fpn", "rpn", "roi_heads", "forward")
VERSIONS = ("torch", "torchvision", "onnxruntime", "ultralytics")


def _stage_times(model: Any, images: list[torch.Tensor], runs: int) -> dict[str, float]:
    """Median eager ms per stage over ``runs`` passes through ``images`` (batch 1 each), one stage at a time, with
    the shared timer (``WARMUP_RUNS`` untimed passes first)."""
    size = [tuple(images[0].shape[-2:])]
    with torch.inference_mode():
        cache = []
        for x in images:
            c5 = model.backbone(model.normalize(x))
            feats = model.neck(OrderedDict((str(i), f) for i, f in enumerate(c5)))
            proposals, _ = model.rpn(ImageList(x, size), feats)
            cache.append((x, c5, feats, proposals))
        calls = {
            "backbone": lambda c: model.backbone(model.normalize(c[0])),
            "fpn": lambda c: model.neck(OrderedDict((str(i), f) for i, f in enumerate(c[1]))),
            "rpn": lambda c: model.rpn(ImageList(c[0], size), c[2]),
            "roi_heads": lambda c: model.roi_heads(c[2], c[3], size),
            "forward": lambda c: model(c[0]),
        }
        return {stage: time_calls(calls[stage], cache, WARMUP_RUNS, runs)["median_ms"] for stage in STAGES}


def _profile(
    base: Any, images: list[torch.Tensor], loader: Any, proposals: int, args: argparse.Namespace, wd: Path
) -> dict[str, Any]:
    """One proposal count: ``base`` (the checkpoint as saved) rebuilt with it, timed, exported, timed and evaluated."""
    train_top_n = list(base.cfg.model.params.get("rpn_post_nms_top_n", [1000, 1000]))
    override = f"model.params.rpn_post_nms_top_n=[{train_top_n[0]},{proposals}]"
    model = load_model(base.path, overrides=[override]).model
    size = tuple(images[0].shape[-2:])
    row: dict[str, Any] = {"proposals": proposals, "override": override, "input_size": list(size)}
    for t in args.threads:
        torch.set_num_threads(t)
        row[f"eager_ms_{t}t"] = _stage_times(model, images, args.runs)
    onnx_path = export_onnx(model, wd / f"dkan_p{proposals}.onnx", size, "detection", base.classes, base.cfg.model.name)
    x1 = [x.numpy() for x in images]
    for t in args.threads:
        row[f"ort_fp32_ms_{t}t"] = ort_latency(onnx_path, x1, t, args.runs)["median_ms"]
    torch.set_num_threads(max(args.threads))
    t0 = time.perf_counter()
    m = evaluate_incremental(DetectionTask(model, base.classes), loader, args.num_base)
    row |= {k: round(m[k], 4) for k in ("ap_base", "ap_novel", "ap_all", "coco_mAP50")}
    row |= {"test_images": len(loader.dataset), "eval_s": round(time.perf_counter() - t0, 1)}
    logger.info("proposals %d: %s", proposals, row)
    return row


def _markdown(doc: dict[str, Any]) -> str:
    threads = doc["threads"]
    head = "| test proposals | AP_B | AP_N | AP_All | " + " | ".join(
        [*(f"{s} ms {t}t" for t in threads for s in STAGES), *(f"ORT FP32 ms {t}t" for t in threads)]
    )
    lines = [
        "# DKAN detector: CPU time per stage, and test-time proposals",
        "",
        f"Command: `{doc['command']}`  ",
        f"Git commit: `{doc['git_commit']}`  ",
        f"Hardware: {doc['environment'].get('cpu', '?')}, torch threads {threads}  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in doc["environment"]["packages"].items() if k in VERSIONS) + "  ",
        f"Checkpoint: `{doc['checkpoint']}` ({doc['classes']} classes, the first {doc['num_base']} base); input "
        f"{'x'.join(map(str, doc['input_size']))}; eager stages: median over {doc['runs']} passes through "
        f"{doc['images']} test images at batch 1; ONNX Runtime: the exported graph on the same images, median over "
        f"{doc['runs']} runs; AP: VOC07 AP50 on all {doc['rows'][0]['test_images']} test images  ",
        f"Wall time: {doc['wall_s']} s; peak RSS {doc['peak_rss_mb']} MB",
        "",
        *method_lines(doc),
        head + " |",
        "|" + "---|" * (4 + len(STAGES) * len(threads) + len(threads)),
    ]
    for r in doc["rows"]:
        cells = [str(r["proposals"]), *(f"{r[k]:.4f}" for k in ("ap_base", "ap_novel", "ap_all"))]
        cells += [f"{r[f'eager_ms_{t}t'][s]:.1f}" for t in threads for s in STAGES]
        cells += [f"{r[f'ort_fp32_ms_{t}t']:.1f}" for t in threads]
        lines.append("| " + " | ".join(cells) + " |")
    yolo = doc["yolo11n"]
    lines += [
        "",
        f"YOLO11n ({doc['classes']} classes, random init, the whole ONNX graph at the same input size), ONNX Runtime "
        "FP32 batch 1, median: " + ", ".join(f"{yolo[f'ort_fp32_ms_{t}t']:.1f} ms at {t} thread(s)" for t in threads),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.dkan_profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a DKAN (or any faster_rcnn_fpn) checkpoint")
    p.add_argument("--num-base", type=int, default=3, help="base classes (the first N of the checkpoint's classes)")
    p.add_argument("--proposals", type=int, nargs="+", default=[300, 100, 50], help="test-time proposal counts")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument(
        "--runs",
        type=int,
        default=TIMED_RUNS,
        help=f"timed passes per stage and ORT graph (after {WARMUP_RUNS} warm-up)",
    )
    p.add_argument("--images", type=int, default=8, help="test images the timings cycle through")
    p.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "dkan_profile"))
    p.add_argument("--name", default="dkan_profile", help="results file stem under benchmarks/results/")
    args = p.parse_args(argv)
    from kdinspect.utils.env import require_clean_tree

    require_clean_tree(REPO)  # results are written from a committed tree only
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    t0 = time.time()
    wd = Path(args.work)
    wd.mkdir(parents=True, exist_ok=True)
    ckpt = Path(args.checkpoint)
    loaded = load_model(ckpt)
    size = (loaded.cfg.data.imgsz, loaded.cfg.data.imgsz)
    samples = load_val_subset(loaded, args.images)
    images = [torch.from_numpy(x) for x in image_inputs([s.meta.path for s in samples], size)]
    cfg = loaded.cfg
    ds = build_dataset(cfg.data, "val", "detection", train=False, seed=cfg.train.seed)
    loader = build_loader(ds, cfg.train.batch_size, False, cfg.train.seed, 0)
    rows = [_profile(loaded, images, loader, k, args, wd) for k in args.proposals]
    yolo_path = dm.export_yolo11n(len(loaded.classes), size[0], wd)
    x1 = [x.numpy() for x in images]  # the same real test images as ours
    yolo = {f"ort_fp32_ms_{t}t": ort_latency(yolo_path, x1, t, args.runs)["median_ms"] for t in args.threads}
    doc = {
        **provenance("benchmarks.dkan_profile", argv),
        "threads": args.threads,
        "latency_method": latency_method(args.runs, args.threads, args.images),
        "checkpoint": str(ckpt),
        "classes": len(loaded.classes),
        "num_base": args.num_base,
        "input_size": list(size),
        "runs": args.runs,
        "images": args.images,
        "seeds": "none drawn (inference only)",
        "rows": rows,
        "yolo11n": yolo,
    }
    write_results(args.name, doc, _markdown, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
