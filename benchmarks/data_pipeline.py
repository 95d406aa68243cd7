"""Data-pipeline timings: ``data check`` per shared dataset, synthetic generation, dataset sample throughput.

Run (timings are meant to be taken with nothing heavy beside it):

    tools/cpu-whole python -m benchmarks.data_pipeline

Writes ``benchmarks/results/data_pipeline.json`` and ``.md``. Shared data: ``$KDINSPECT_SHARED_DATA`` or
``<repo>/../shared/datasets``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import REPO
from benchmarks.common.results import provenance, results_dir, write_results
from kdinspect.config import DataConfig
from kdinspect.data import build_dataset
from kdinspect.data.check import check_dataset
from kdinspect.data.synthetic import generate_detection_dataset, generate_segmentation_dataset
from kdinspect.utils.env import require_clean_tree

DATASETS = {"neu-det": "voc", "deeppcb": "deeppcb", "deepcrack": "deepcrack", "crackforest": "crackforest"}


def _median_time(fn, repeats: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def bench_check(shared: Path, repeats: int, workers: int) -> dict:
    rows = {}
    for name, fmt in DATASETS.items():
        row = {"format": fmt}
        for decode in (False, True):
            med, times, report = _median_time(
                lambda n=name, f=fmt, d=decode: check_dataset(shared / n, fmt=f, decode=d, workers=workers), repeats
            )
            key = "decode" if decode else "annotations_only"
            row[f"{key}_s_median"], row[f"{key}_s_runs"] = round(med, 3), [round(t, 3) for t in times]
        row.update(images=report.total["images"], boxes=report.total.get("boxes"), ok=report.ok,
                   errors=len(report.errors), warnings=len(report.warnings), sizes=report.sizes)  # fmt: skip
        rows[name] = row
    return rows


def bench_synthetic(repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        det, det_runs, _ = _median_time(
            lambda: generate_detection_dataset(Path(tempfile.mkdtemp(dir=tmp)), 48, 16, seed=0, imgsz=128), repeats
        )
        seg, seg_runs, _ = _median_time(
            lambda: generate_segmentation_dataset(Path(tempfile.mkdtemp(dir=tmp)), 48, 16, seed=0, size=(128, 160)),
            repeats,
        )
    return {
        "detection_64_images_128px_s_median": round(det, 3),
        "detection_runs": [round(t, 3) for t in det_runs],
        "segmentation_64_images_128x160_s_median": round(seg, 3),
        "segmentation_runs": [round(t, 3) for t in seg_runs],
    }


def bench_throughput(shared: Path, n: int) -> dict:
    """Samples/s of ``dataset[i]`` (decode + transform, 1 process) for a training and an evaluation pipeline."""
    cases = {
        "neu-det train (imgsz 256, flips)": (DataConfig(format="voc", root=str(shared / "neu-det"), train="trainval",
                                                        imgsz=256, limit=n), "train", "detection", True),
        "deeppcb test eval (imgsz 640)": (DataConfig(format="deeppcb", root=str(shared / "deeppcb"), val="test",
                                                     imgsz=640, limit=n), "val", "detection", False),
        "deepcrack train (crop 256, flips)": (DataConfig(format="deepcrack", root=str(shared / "deepcrack"),
                                                         imgsz=256, limit=n), "train", "segmentation", True),
        "crackforest test eval (full 480x320)": (DataConfig(format="crackforest", root=str(shared / "crackforest"),
                                                            val="test", limit=n), "val", "segmentation", False),
    }  # fmt: skip
    out = {}
    for name, (cfg, split, kind, train) in cases.items():
        ds = build_dataset(cfg, split, kind, train=train, seed=0)
        ds[0]  # warm-up
        t0 = time.perf_counter()
        for i in range(len(ds)):
            ds[i]
        dt = time.perf_counter() - t0
        out[name] = {"samples": len(ds), "seconds": round(dt, 3), "samples_per_s": round(len(ds) / dt, 1)}
    return out


def _markdown(res: dict) -> str:
    env = res.get("environment") or res["env"]  # files written before benchmarks.common.results: "env", "commit"
    pkg = env["packages"]
    lines = [
        "# Data pipeline timings",
        "",
        f"Command: `{res['command']}`  ",
        f"Commit: `{res.get('git_commit') or res['commit']}`; CPU: {env['cpu']} ({env['cpu_count']} cores); "
        f"torch threads {res['threads']}; decode threads {res['workers']}; repeats {res['repeats']} (median).  ",
        f"Versions: torch {pkg.get('torch')}, torchvision {pkg.get('torchvision')}, numpy {pkg.get('numpy')}, "
        f"Pillow {res['pillow']}. Seeds: synthetic 0, augmentation 0. "
        f"Wall time {res['wall_s']:.1f} s, peak RSS {res['peak_rss_mb']:.0f} MB.",
        "",
        "## `data check` (median seconds)",
        "",
        "| dataset | images | boxes | annotations only | full decode | errors | warnings |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in res["check"].items():
        lines.append(f"| {name} | {r['images']} | {r['boxes'] if r['boxes'] is not None else '-'} | "
                     f"{r['annotations_only_s_median']:.2f} | {r['decode_s_median']:.2f} | {r['errors']} | "
                     f"{r['warnings']} |")  # fmt: skip
    s = res["synthetic"]
    lines += [
        "",
        "## Synthetic generation (64 images: 48 train + 16 val, median seconds)",
        "",
        f"- detection, 128 px, VOC: {s['detection_64_images_128px_s_median']:.3f} s",
        f"- segmentation, 128x160: {s['segmentation_64_images_128x160_s_median']:.3f} s",
        "",
        "## Dataset throughput (`dataset[i]`: decode + transforms, one process)",
        "",
        "| pipeline | samples | samples/s |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {v['samples']} | {v['samples_per_s']} |" for k, v in res["throughput"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.data_pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="decoding threads of data check")
    parser.add_argument("--samples", type=int, default=128, help="samples per throughput case")
    parser.add_argument("--out", type=Path, default=results_dir(REPO))
    args = parser.parse_args(argv)
    committed = args.out.resolve() == results_dir(REPO).resolve()
    if committed:
        require_clean_tree(REPO)  # results are written from a committed tree only
    shared = Path(os.environ.get("KDINSPECT_SHARED_DATA", REPO.parent / "shared" / "datasets"))
    torch.set_num_threads(1)
    import PIL

    t0 = time.perf_counter()
    res = {
        **provenance("benchmarks.data_pipeline", argv, check=committed),
        "pillow": PIL.__version__,
        "threads": torch.get_num_threads(),
        "workers": args.workers,
        "repeats": args.repeats,
        "check": bench_check(shared, args.repeats, args.workers),
        "synthetic": bench_synthetic(max(args.repeats, 5)),
        "throughput": bench_throughput(shared, args.samples),
    }
    res["wall_s"] = time.perf_counter() - t0
    write_results("data_pipeline", res, _markdown, out_dir=args.out)
    print(_markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
