"""HSD benchmark (one command per dataset): teacher, student, HSD-distilled student, Ultralytics YOLO11n with and
without its built-in distillation, all at the same epochs, image size and thread count.

    python -m benchmarks.hsd --dataset neu-det            # every row, 2 seeds for the students, then latency
    python -m benchmarks.hsd --dataset deeppcb            # rows 1-3
    python -m benchmarks.hsd --dataset neu-det --report   # re-aggregate finished jobs only
    python -m benchmarks.hsd --dataset neu-det --epochs 8 --variant lite --switches
                        # the lite student (configs/hsd/*_lite.yaml) + the ca_mode / cls_loss switch rows

Every training job runs as ``python -m benchmarks.hsd --job ID`` behind ``--launcher`` (default
``tools/cpu-slot`` where flock exists: one of the machine-wide CPU slots, 1 torch thread); up to ``--workers`` at
once (the shared job runner, ``benchmarks.common.jobs``). A job trains, evaluates the final weights on the test split
with kdinspect's COCO evaluator (faster-coco-eval), exports ONNX graphs (in-graph NMS and decode-only), counts
parameters and FLOPs and writes ``row.json`` in its folder under ``benchmarks/work/hsd/<name>/`` (git-ignored; name =
the dataset, plus ``-lite`` for ``--variant lite``), so an interrupted benchmark resumes where it stopped. When all
jobs are done, ONNX Runtime latency is measured under ``--latency-launcher`` (``tools/cpu-whole``: nothing heavy
beside it) with the shared timer (``benchmarks.common.measure``: real test images, fixed warm-up and run counts). The
report ``benchmarks/results/hsd_<name>.json`` / ``.md`` is rewritten after every finished job.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import REPO
from benchmarks.common.jobs import Job as RunnerJob
from benchmarks.common.jobs import default_launcher, module_cmd, run_jobs
from benchmarks.hsd_report import SWITCH_ROWS, write_report

SHARED = Path(os.environ.get("KDINSPECT_SHARED_DATA", REPO.parent / "shared" / "datasets"))
DATASETS: dict[str, dict[str, Any]] = {
    "neu-det": {"folder": "neu-det", "epochs": 12, "imgsz": 192, "yolo": True, "seeds": (0, 1)},
    "deeppcb": {"folder": "deeppcb", "epochs": 12, "imgsz": 320, "yolo": False, "seeds": (0,)},
}
VARIANTS = ("paper", "lite")
OURS = ("teacher", "student", "student_hsd", "student_scratch", *SWITCH_ROWS)
YOLO_MODELS = {"yolo11n": "yolo11n.yaml", "yolo11s": "yolo11s.yaml", "yolo11n_distill": "yolo11n.yaml"}


@dataclass(frozen=True)
class Job:
    """One training run. ``row`` names the benchmark row, ``deps`` the jobs whose weights it needs."""

    row: str
    seed: int
    deps: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.row}_s{self.seed}"


def jobs_for(dataset: str, seeds: tuple[int, ...], scratch: bool, switches: bool = False) -> list[Job]:
    """Jobs in launch order: one full table (seed 0) first, then the extra student seeds, then the switch rows."""
    s0 = seeds[0]
    jobs = [Job("teacher", s0), Job("student", s0)]
    if DATASETS[dataset]["yolo"]:
        jobs.append(Job("yolo11n", s0))
    jobs.append(Job("student_hsd", s0, (f"teacher_s{s0}",)))
    if DATASETS[dataset]["yolo"]:
        jobs += [Job("yolo11s", s0), Job("yolo11n_distill", s0, (f"yolo11s_s{s0}",))]
    if scratch:
        jobs.append(Job("student_scratch", s0))
    for s in seeds[1:]:
        jobs += [Job("student", s), Job("student_hsd", s, (f"teacher_s{s0}",))]
    if switches:
        jobs += [Job(row, s) for s in seeds for row in SWITCH_ROWS]
    return jobs


def work_dir(args: argparse.Namespace) -> Path:
    suffix = f"-smoke{args.smoke}" if args.smoke else ""
    return REPO / "benchmarks" / "work" / "hsd" / f"{args.name}{suffix}"


def _done(args: argparse.Namespace, job: Job) -> bool:
    return (work_dir(args) / job.id / "row.json").exists()


# --------------------------------------------------------------------------- one job (runs behind the launcher)
def _our_config(args: argparse.Namespace, job: Job) -> Any:
    from kdinspect.config import load_config

    role = "student" if job.row == "student_scratch" or job.row in SWITCH_ROWS else job.row
    variant = "" if role == "teacher" or args.variant == "paper" else f"_{args.variant}"
    path = REPO / "configs" / "hsd" / f"{args.dataset}_{role}{variant}.yaml"
    wd = work_dir(args)
    overrides = [
        f"data.root={SHARED / DATASETS[args.dataset]['folder']}", f"data.imgsz={args.imgsz}",
        f"train.epochs={args.epochs}", f"train.seed={job.seed}", f"train.threads={args.threads}",
        "train.eval_interval=0", f"train.out_dir={wd}", f"train.name={job.id}", f"data.limit={args.smoke}",
        f"train.device={args.device}", f"data.workers={args.data_workers}",
    ]  # fmt: skip
    if job.row == "student_hsd":
        overrides.append(f"distill.teacher={wd / job.deps[0] / 'last.safetensors'}")
    if job.row == "student_scratch":
        overrides.append("model.params.pretrained=false")
    overrides += SWITCH_ROWS.get(job.row, [])
    if (wd / job.id / "last.safetensors").exists():
        overrides.append("train.resume=true")
    return load_config(path, overrides)


def run_our_job(args: argparse.Namespace, job: Job) -> dict[str, Any]:
    """Train with ``kdinspect.api.train``; evaluate, export and measure the final (= last) weights."""
    from benchmarks.common.measure import count_flops, count_params
    from kdinspect.api import train
    from kdinspect.engine.checkpoint import load_model
    from kdinspect.export.onnx import export_onnx

    cfg = _our_config(args, job)
    t0 = time.perf_counter()
    result = train(cfg, progress=False)  # eval_interval 0: one evaluation, of the final weights (best == last)
    wall = time.perf_counter() - t0
    loaded = load_model(result.last)
    model = loaded.model
    out = work_dir(args) / job.id
    onnx = {}
    for nms in (True, False):
        path = out / f"{job.id}_{'nms' if nms else 'raw'}.onnx"
        export_onnx(model, path, (args.imgsz, args.imgsz), "detection", loaded.classes, cfg.model.name, 17, False, nms)
        onnx["nms" if nms else "raw"] = str(path)
    p = cfg.model.params
    metrics = result.metrics
    bb, ch, nk, k = p.get("backbone"), p.get("channels"), p.get("neck_kernel", 7), p.get("pred_kernel", 3)
    arch = f"{bb} + {'FPN' if job.row == 'teacher' else 'HKN'}-{ch} + HKH-{ch}"
    if job.row != "teacher" and args.variant != "paper":
        blocks, norm = p.get("stacked", 3), p.get("head_norm", "gn")
        arch = f"{bb} + HKN-{ch} (DW {nk}x{nk}) + {blocks}-block head-{ch} ({norm}, {k}x{k} pred)"
    return {
        "model": f"HSD {job.row.replace('_', ' ')}{'' if job.row == 'teacher' else ' ' + args.variant} ({arch})",
        "system": "kdinspect",
        "imagenet_init": bool(p.get("pretrained", False)),
        "distill": "HSD LD from the teacher" if job.row == "student_hsd" else "",
        "mAP50": metrics["mAP50"], "mAP50_95": metrics["mAP"], "mAP75": metrics["mAP75"],
        "per_class_AP50": {k[5:]: v for k, v in metrics.items() if k.startswith("AP50_")},
        "params": count_params(model), "gflops": count_flops(model.inference_module(nms=False), args.imgsz),
        "train_wall_s": wall, "batch": cfg.train.batch_size, "lr": cfg.train.lr, "optimizer": cfg.train.optimizer,
        "scheduler": cfg.train.scheduler, "cls_loss": p.get("cls_loss"), "ca_mode": p.get("ca_mode"),
        "thresholds": {"score": model.score_thr, "nms_iou": model.nms_iou, "max_det": model.max_per_img},
        "onnx": onnx,
    }  # fmt: skip


def run_yolo_job(args: argparse.Namespace, job: Job) -> dict[str, Any]:
    """Convert the data (once), train Ultralytics offline, evaluate its predictions with our COCO evaluator."""
    from benchmarks import hsd_yolo

    wd = work_dir(args)
    out = wd / job.id
    hsd_yolo.offline_env(wd / "yolo_config")
    from benchmarks.common.measure import count_flops, count_params
    from kdinspect.config import DataConfig
    from kdinspect.data import read_split
    from kdinspect.evaluation.detection import GroundTruth, evaluate_detections

    data_cfg = DataConfig(
        format="voc", root=str(SHARED / DATASETS[args.dataset]["folder"]), train="trainval", val="test"
    )
    data_cfg.limit = args.smoke
    index = {s: read_split(data_cfg, s) for s in ("train", "val")}
    data_yaml = wd / "yolo_data" / "data.yaml"
    if not data_yaml.exists():
        hsd_yolo.convert_dataset({s: ix.records for s, ix in index.items()}, index["train"].classes, wd / "yolo_data")
    distill = str(wd / job.deps[0] / "weights" / "last.pt") if job.deps else ""
    targs = argparse.Namespace(
        data=str(data_yaml),
        model=YOLO_MODELS[job.row],
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=8,
        seed=job.seed,
        threads=args.threads,
        device=args.device,
        workers=args.data_workers,
        distill=distill,
        out=str(out),
    )
    trained = hsd_yolo.train(targs)
    weights = Path(trained["weights"])
    records = index["val"].records
    preds = hsd_yolo.predict(weights, [Path(r.image) for r in records], args.imgsz, args.threads, args.device)
    gts = [GroundTruth(r.image_id, r.width, r.height, r.boxes, r.labels) for r in records]
    metrics = evaluate_detections(preds, gts, index["val"].classes, out / "eval_last")
    onnx = {
        k: str(hsd_yolo.export_onnx(weights, args.imgsz, k == "nms", out / f"{job.id}_{k}.onnx"))
        for k in ("nms", "raw")
    }
    from ultralytics import YOLO

    net = YOLO(str(weights)).model.float()
    return {
        "model": {"yolo11n": "YOLO11n (scratch)", "yolo11s": "YOLO11s (scratch; teacher of the distilled YOLO11n)",
                  "yolo11n_distill": "YOLO11n + Ultralytics distill_model=YOLO11s"}[job.row],
        "system": "ultralytics", "imagenet_init": False,
        "distill": "Ultralytics distill_model (YOLO11s)" if distill else "",
        "mAP50": metrics["mAP50"], "mAP50_95": metrics["mAP"], "mAP75": metrics["mAP75"],
        "per_class_AP50": {k[5:]: v for k, v in metrics.items() if k.startswith("AP50_")},
        "params": count_params(net), "gflops": count_flops(net, args.imgsz), "train_wall_s": trained["train_wall_s"],
        "batch": 8, "optimizer": "Ultralytics 'auto' (AdamW for short runs)",
        "scheduler": "Ultralytics default (linear)",
        "thresholds": {"score": 0.001, "nms_iou": 0.7, "max_det": 300, "onnx_nms_conf": 0.25},
        "onnx": onnx,
    }  # fmt: skip


def run_job(args: argparse.Namespace, job_id: str) -> None:
    jobs = {j.id: j for j in jobs_for(args.dataset, tuple(args.seeds), True, True)}
    if job_id not in jobs:
        raise SystemExit(f"unknown job {job_id!r}; valid: {sorted(jobs)}")
    job = jobs[job_id]
    import torch

    torch.set_num_threads(args.threads)
    row = run_yolo_job(args, job) if job.row in YOLO_MODELS else run_our_job(args, job)
    row |= {"job": job.id, "row": job.row, "seed": job.seed, "epochs": args.epochs, "imgsz": args.imgsz,
            "threads": args.threads, "dataset": args.dataset, "train_device": _device_name(args.device),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip
    from kdinspect.utils.io import write_json

    write_json(work_dir(args) / job.id / "row.json", row)


def _device_name(device: str) -> str:
    import torch

    from kdinspect.utils.env import cpu_model

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(torch.device(device))} (GPU), host CPU {cpu_model()}"
    return f"{cpu_model()} (CPU)"


# --------------------------------------------------------------------------- moving runs between machines
def pack(args: argparse.Namespace, archive: Path) -> None:
    """Archive what the local latency measurement and report need: rows, logs, evaluation files, and the final
    weights as fp16 model tensors only (the header keeps the run config; ``load_model`` casts back to fp32).
    YOLO11s (teacher of row 5, not a reported row) keeps no weights."""
    import tarfile
    import tempfile

    from safetensors import safe_open
    from safetensors.torch import save_file

    wd = work_dir(args)
    with tarfile.open(archive, "w:gz") as tar, tempfile.TemporaryDirectory() as tmp:
        for path in sorted(wd.rglob("*")):
            rel = path.relative_to(wd)
            if path.is_dir() or rel.parts[0] in ("yolo_data", "yolo_config") or path.suffix in (".onnx", ".pt"):
                if path.name == "last.pt" and not rel.parts[0].startswith("yolo11s"):
                    tar.add(path, arcname=str(rel))  # Ultralytics strips the optimizer at the end: ~5 MB fp16
                continue
            if path.suffix == ".safetensors":
                if path.name != "last.safetensors":
                    continue
                with safe_open(str(path), framework="pt") as fh:
                    meta = fh.metadata()
                    tensors = {
                        k: (t.half() if t.is_floating_point() else t)
                        for k in fh.keys()  # noqa: SIM118 - safe_open is not a mapping
                        if k.startswith("model.") and (t := fh.get_tensor(k)) is not None
                    }
                slim = Path(tmp) / f"{rel.parts[0]}.safetensors"
                save_file(tensors, str(slim), metadata=meta)
                tar.add(slim, arcname=str(rel))
                continue
            tar.add(path, arcname=str(rel))
    print(f"[hsd-bench] packed {wd} -> {archive} ({archive.stat().st_size / 2**20:.1f} MiB)", flush=True)


def unpack(args: argparse.Namespace, archive: Path) -> None:
    """Extract an archive written by :func:`pack` into this machine's work folder (finished rows are kept)."""
    import tarfile

    wd = work_dir(args)
    wd.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(wd, filter="data")
    print(f"[hsd-bench] unpacked {archive} -> {wd}", flush=True)


def _local_onnx(args: argparse.Namespace, row: dict[str, Any], kind: str) -> Path:
    """The row's ONNX graph in this work folder; re-exported from the row's weights when it is not here (runs
    trained on another machine come back with weights only)."""
    wd = work_dir(args)
    job_dir = wd / row["job"]
    path = job_dir / Path(row["onnx"][kind]).name
    if path.exists():
        return path
    nms = kind == "nms"
    if row["system"] == "ultralytics":
        from benchmarks import hsd_yolo

        hsd_yolo.offline_env(wd / "yolo_config")
        return hsd_yolo.export_onnx(job_dir / "weights" / "last.pt", args.imgsz, nms, path)
    from kdinspect.engine.checkpoint import load_model
    from kdinspect.export.onnx import export_onnx

    loaded = load_model(job_dir / "last.safetensors")
    export_onnx(loaded.model, path, (args.imgsz, args.imgsz), "detection", loaded.classes, loaded.cfg.model.name,
                17, False, nms)  # fmt: skip
    return path


# --------------------------------------------------------------------------- latency (behind cpu-whole)
def test_images(data_cfg: Any, n: int) -> list[Path]:
    """Up to ``n`` test images spread over the split (every len/n-th one)."""
    from kdinspect.data import read_split

    records = read_split(data_cfg, "val").records
    if not records:
        raise ValueError(f"{data_cfg.root}: no test images for the latency inputs")
    step = max(len(records) // n, 1)
    return [Path(r.image) for r in records[::step][:n]]


def run_latency(args: argparse.Namespace) -> None:
    """Time every finished row's ONNX graphs with 1 and 2 ORT threads on real test images (the shared timer)."""
    from benchmarks.common.measure import (
        LATENCY_IMAGES,
        TIMED_RUNS,
        WARMUP_RUNS,
        image_inputs,
        latency_method,
        ort_latency,
    )
    from kdinspect.config import DataConfig
    from kdinspect.utils.env import cpu_model
    from kdinspect.utils.io import write_json

    wd = work_dir(args)
    fmt = "voc" if args.dataset == "neu-det" else "deeppcb"
    data_cfg = DataConfig(format=fmt, root=str(SHARED / DATASETS[args.dataset]["folder"]), val="test", imgsz=args.imgsz)
    data_cfg.limit = args.smoke
    inputs = image_inputs(test_images(data_cfg, LATENCY_IMAGES), (args.imgsz, args.imgsz))
    out: dict[str, Any] = {
        "cpu": cpu_model(),
        "inputs": len(inputs),
        "warmup": WARMUP_RUNS,
        "runs": TIMED_RUNS,
        "method": latency_method(TIMED_RUNS) + " Measured under tools/cpu-whole.",
        "rows": {},
    }
    for row_file in sorted(wd.glob("*/row.json")):
        row = json.loads(row_file.read_text())
        weights = row_file.parent / ("weights/last.pt" if row["system"] == "ultralytics" else "last.safetensors")
        if not any((row_file.parent / Path(p).name).exists() for p in row["onnx"].values()) and not weights.exists():
            print(f"[hsd-bench] no weights or ONNX for {row['job']} here: latency not measured", flush=True)
            continue  # e.g. YOLO11s (teacher of row 5, not a reported row) or extra seeds packed without weights
        out["rows"][row["job"]] = {
            f"{kind}_{t}t": ort_latency(_local_onnx(args, row, kind), inputs, t) for kind in row["onnx"] for t in (1, 2)
        }
        print(f"[hsd-bench] latency {row['job']}: {out['rows'][row['job']]}", flush=True)
    write_json(wd / "latency.json", out)


# --------------------------------------------------------------------------- orchestration
def _job_cmd(args: argparse.Namespace, extra: list[str]) -> list[str]:
    seeds = [str(s) for s in args.seeds]
    return module_cmd("benchmarks.hsd", "--dataset", args.dataset, "--epochs", str(args.epochs),
                      "--imgsz", str(args.imgsz), "--threads", str(args.threads), "--smoke", str(args.smoke),
                      "--seeds", *seeds, "--device", args.device, "--data-workers", str(args.data_workers),
                      "--variant", args.variant, *extra)  # fmt: skip


def runner_jobs(args: argparse.Namespace) -> list[RunnerJob]:
    """The training jobs as jobs of the shared runner (done = the job's ``row.json``; a killed job resumes from its
    ``last.safetensors`` by itself, see ``_our_config``)."""
    wd = work_dir(args)
    return [
        RunnerJob(j.id, _job_cmd(args, ["--job", j.id]), wd / j.id, wd / j.id / "row.json", j.deps)
        for j in jobs_for(args.dataset, tuple(args.seeds), args.scratch, args.switches)
    ]


def run_all(args: argparse.Namespace) -> list[str]:
    """Run unfinished jobs (dependencies first, ``--workers`` at once); return the failed job ids."""
    report = run_jobs(
        runner_jobs(args),
        log_dir=work_dir(args) / "logs",
        workers=args.workers,
        launcher=args.launcher,
        poll=args.poll,
        on_finish=lambda _job: write_report(args, work_dir(args)),
        tag="hsd-bench",
    )
    return list(report.failed)


def _measure_latency(args: argparse.Namespace) -> int:
    """``--latency`` in its own process behind ``--latency-launcher``; returns its exit code."""
    log = work_dir(args) / "logs" / "latency.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [*shlex.split(args.latency_launcher), *_job_cmd(args, ["--latency"])]
    print(f"[hsd-bench] start: {shlex.join(cmd)}", flush=True)
    with log.open("a") as fh:
        return subprocess.run(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT).returncode


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.hsd", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", choices=sorted(DATASETS), default="neu-det")
    p.add_argument("--epochs", type=int, default=0, help="0 = the dataset's default recipe")
    p.add_argument("--imgsz", type=int, default=0, help="0 = the dataset's default recipe")
    p.add_argument("--threads", type=int, default=1, help="torch threads of every training job")
    p.add_argument("--device", default="cpu", help="training device of every job: cpu | cuda | cuda:N")
    p.add_argument("--data-workers", type=int, default=0, help="data-loading worker processes per training job")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="student seeds (first = teacher/YOLO seed)")
    p.add_argument("--scratch", action="store_true", help="also train the student without ImageNet weights")
    p.add_argument(
        "--switches",
        action="store_true",
        help="also train the undistilled student with ca_mode=apply_on_laterals and with cls_loss=bce (every seed)",
    )
    p.add_argument(
        "--variant",
        choices=VARIANTS,
        default="paper",
        help="student architecture: paper (HKN + HKH as published) or lite (configs/hsd/*_lite.yaml: the CPU-latency "
        "student); lite writes hsd_<dataset>-lite.json",
    )
    p.add_argument("--workers", type=int, default=2, help="training jobs at once")
    default_slot, default_whole = default_launcher("cpu-slot"), default_launcher("cpu-whole")
    p.add_argument("--launcher", default=default_slot, help="command prefix of every training job")
    p.add_argument("--latency-launcher", default=default_whole, help="command prefix of the latency measurement")
    p.add_argument("--poll", type=float, default=20.0)
    p.add_argument("--smoke", type=int, default=0, help="dry run on the first N images of each split (own work dir)")
    p.add_argument("--job", default="", help=argparse.SUPPRESS)
    p.add_argument("--latency", action="store_true", help="only measure latency of finished rows (in this process)")
    p.add_argument("--report", action="store_true", help="only re-aggregate finished jobs")
    p.add_argument("--skip-latency", action="store_true", help="train only (e.g. on a GPU machine); measure later")
    p.add_argument("--pack", type=Path, help="archive finished runs (slim weights) for measurement elsewhere")
    p.add_argument("--unpack", type=Path, help="extract a --pack archive into the work folder, then report")
    args = p.parse_args(argv)
    spec = DATASETS[args.dataset]
    args.epochs = args.epochs or spec["epochs"]
    args.imgsz = args.imgsz or spec["imgsz"]
    args.seeds = tuple(args.seeds or spec["seeds"])
    args.name = args.dataset if args.variant == "paper" else f"{args.dataset}-{args.variant}"
    args.argv = ["python", "-m", "benchmarks.hsd", *(argv if argv is not None else sys.argv[1:])]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from kdinspect.utils.env import require_clean_tree

    if not getattr(args, "smoke", 0):
        require_clean_tree(REPO)  # results are written from a committed tree only
    if args.job:
        run_job(args, args.job)
        return 0
    if args.latency:
        run_latency(args)
        write_report(args, work_dir(args))
        return 0
    if args.pack:
        pack(args, args.pack)
        return 0
    if args.unpack:
        unpack(args, args.unpack)
        write_report(args, work_dir(args))
        return 0
    if args.report:
        write_report(args, work_dir(args))
        return 0
    t0 = time.perf_counter()
    failed = run_all(args)
    if args.skip_latency:
        write_report(args, work_dir(args), wall_s=time.perf_counter() - t0)
        return 1 if failed else 0
    lat_rc = _measure_latency(args)
    write_report(args, work_dir(args), wall_s=time.perf_counter() - t0)
    if failed:
        print(f"[hsd-bench] failed jobs: {failed}; logs in {work_dir(args) / 'logs'}", flush=True)
    return 1 if failed or lat_rc else 0


if __name__ == "__main__":
    raise SystemExit(main())
