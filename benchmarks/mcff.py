"""MCFF-L Net benchmark on DeepCrack or CrackForest (one command per dataset).

    python -m benchmarks.mcff --dataset deepcrack      # ~5 h on 2 CPU cores (two 1-thread jobs at a time)
    python -m benchmarks.mcff --dataset crackforest    # ~2 h
    python -m benchmarks.mcff --dataset deepcrack --report-only
    python -m benchmarks.mcff --dataset deepcrack --recipe gpu --device cuda --launcher "" --workers 8 --skip-measure
    python -m benchmarks.mcff --dataset deepcrack --pack OUT/mcff_deepcrack.tar   # then: --unpack, --measure-only

Rows: the teacher, the student without distillation (released and 3x3 ground-truth dilation), the student distilled
offline with each temperature strategy (standard, hyperthermal, non-isothermal), kdinspect's lite student (the
student's paths at 1/4 resolution, not in the paper) and a peer U-Net of similar size (segmentation_models_pytorch,
MobileNetV3-small encoder, random init), all trained with the recipe of
``configs/mcff/<dataset>_*.yaml`` (same crops, epochs, optimizer, seed and 1 thread per job). Step 2 (soft labels at
T1 = 10 from the teacher) runs as two shards. Every job is a ``python -m kdinspect ...`` process behind ``--launcher``
(``tools/cpu-slot``: one CPU slot per core; the shared job runner, ``benchmarks.common.jobs``); finished jobs are
skipped on a re-run and a killed training restarts with ``--resume``, so an interrupted benchmark resumes. ``--rows``
runs (and reports) a subset under its own ``--name``. Test metrics come from each run's final full-resolution
evaluation (``results.json``). Then, under ``--whole`` (``tools/cpu-whole``), ``python -m benchmarks.mcff_measure``
measures parameters, GFLOPs and ONNX Runtime latency at 448x448 (the shared timer, ``benchmarks.common.measure``) and
draws overlays. Results: ``benchmarks/results/mcff_<dataset>.json`` (or ``<name>.json``) and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO
from benchmarks.common.jobs import Job, default_launcher, module_cmd, run_jobs
from benchmarks.common.measure import INPUT_KIND, LATENCY_IMAGES, TIMED_RUNS, WARMUP_RUNS
from benchmarks.common.results import command_line, write_results
from benchmarks.mcff_pack import ARCH_CKPT, pack, unpack
from kdinspect.config import load_config
from kdinspect.distill.soft_labels import soft_label_dirs
from kdinspect.utils.env import environment_info, git_commit, require_clean_tree
from kdinspect.utils.io import write_json

T1 = 10.0
ROWS = (
    "teacher",
    "student",
    "student_dil3x3",
    "student_kd_standard",
    "student_kd_hyperthermal",
    "student_kd_non_isothermal",
    "student_lite",
    "peer_unet",
)
OVERLAY_IMAGES = {
    "deepcrack": ["test_img/11125-1.jpg", "test_img/11215-5.jpg"],
    "crackforest": ["image/001.jpg", "image/011.jpg"],
}
# GPU recipe (--recipe gpu): the same for every row of a dataset; sized so that all rows finish on one H100 with the
# jobs running side by side (DeepCrack in ~6 min, CrackForest in ~3 min; see docs/mcff.md for the estimate).
GPU_RECIPE: dict[str, dict[str, Any]] = {
    "deepcrack": {
        "data.imgsz": 256,
        "train.epochs": 20,
        "train.batch_size": 4,
        "train.amp": True,
        "train.threads": 2,
        "data.workers": 2,
    },
    "crackforest": {
        "data.imgsz": 256,
        "train.epochs": 30,
        "train.batch_size": 4,
        "train.amp": True,
        "train.threads": 2,
        "data.workers": 2,
    },
}
PAPER = {"f1": 0.8570, "iou": 0.7822, "params": 1_179_392, "data": "the authors' Stage_4 pavement set (not public)"}


def _rows(args: argparse.Namespace, trained: bool = True) -> list[str]:
    """The rows this run trains (``--rows``, else all, the online-KD student with --with-online) or, with
    ``trained=False``, measures and reports (``--rows``, else every row that has a finished run)."""
    if args.rows:
        return list(args.rows)
    return [*ROWS, "student_kd_online"] if args.with_online or not trained else list(ROWS)


def _jobs(ds: str, work: Path, rows: list[str], sets: list[str], device: str) -> list[Job]:
    """The training rows and (when a selected row needs them) the two soft-label shards, as jobs of the shared
    runner: done = the run's ``results.json`` (a shard's done marker); a killed training restarts with ``--resume``
    from its ``last.safetensors``."""
    runs, soft = work / "runs", work / "softlabels" / f"{ds}_T10"
    extra = [a for kv in sets for a in ("--set", kv)] + (["--device", device] if device else [])
    jobs = []
    for row in rows:
        name = f"{ds}_{row}"
        cmd = module_cmd("kdinspect", "train", "--config", f"configs/mcff/{name}.yaml", "--out-dir", str(runs),
                         "--no-progress", *extra)  # fmt: skip
        after: tuple[str, ...] = ()
        if row.startswith("student_kd_") and row != "student_kd_online":
            cmd += ["--set", f"data.params.soft_labels={json.dumps(soft_label_dirs(soft, 'png'))}"]
            after = (f"{ds}_softlabels_0", f"{ds}_softlabels_1")
        elif row == "student_kd_online":
            cmd += ["--teacher", str(runs / f"{ds}_teacher" / "best.safetensors")]
            after = (f"{ds}_teacher",)
        run = runs / name
        jobs.append(Job(name, cmd, run, run / "results.json", after, ("--resume",), run / "last.safetensors"))
    if not any(a.startswith(f"{ds}_softlabels_") for j in jobs for a in j.after):
        return jobs  # no selected row needs the soft labels
    teacher_ckpt = runs / f"{ds}_teacher" / "best.safetensors"
    dev = ["--device", device] if device else []
    # the shards wait for the teacher row when it is trained in this run; otherwise its finished run must exist (a
    # missing teacher checkpoint fails the shards, and the rows after them are reported skipped)
    teacher = (f"{ds}_teacher",) if f"{ds}_teacher" in {j.name for j in jobs} else ()
    for k in range(2):
        cmd = module_cmd("kdinspect", "softlabels", str(teacher_ckpt), "--out", str(soft), "--t1", str(T1),
                         "--shard", f"{k}/2", *dev)  # fmt: skip
        cmd = ["sh", "-c", shlex.join(cmd) + f" && touch {shlex.quote(str(soft / f'.shard{k}.done'))}"]
        name = f"{ds}_softlabels_{k}"
        jobs.append(Job(name, cmd, work / "jobs" / name, soft / f".shard{k}.done", teacher))
    return jobs


def _row(ds: str, row: str, work: Path, measured: dict[str, Any], record: dict[str, Any]) -> dict[str, Any] | None:
    name = f"{ds}_{row}"
    res_file = work / "runs" / name / "results.json"
    if not res_file.is_file():
        return None
    res = json.loads(res_file.read_text())
    cfg = load_config(work / "runs" / name / "config.yaml")
    m, meas = res["metrics"], measured.get(row, {})
    out = {
        "model": row,
        "model_name": cfg.model.name,
        "distill": cfg.distill.params.get("strategy", "") if cfg.distill.method else "",
        "f1": m["f1"],
        "iou": m["iou"],
        "precision": m["precision"],
        "recall": m["recall"],
        "f1_tol": m["f1_tol"],
        "iou_tol": m["iou_tol"],
        "precision_tol": m["precision_tol"],
        "recall_tol": m["recall_tol"],
        "ods": m["ods"],
        "ois": m["ois"],
        "ods_tol": m["ods_tol"],
        "params": meas.get("params"),
        "gflops": meas.get("gflops"),
        "latency_ms_1t": meas.get("latency_ms_1t"),
        "latency_ms_2t": meas.get("latency_ms_2t"),
        "train_wall_s": res["fit_wall_s"] - res["fit_eval_wall_s"],
        "eval_wall_s": res["fit_eval_wall_s"],
        "peak_rss_mb": record.get(name, {}).get("peak_rss_mb"),
        "epochs": cfg.train.epochs,
        "imgsz": cfg.data.imgsz,
        "batch_size": cfg.train.batch_size,
        "threads": res["threads"],
        "gt_dilation": cfg.model.params.get("gt_dilation", "released"),
        "infer_temperature": cfg.model.params.get("infer_temperature", 1.0),
        "overlays": meas.get("overlays", []),
        "onnx_max_abs_diff": meas.get("onnx_max_abs_diff"),
        "weights": meas.get("weights", "trained"),
    }
    return out


def _fmt(v: Any, pct: bool = False, digits: int = 1) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.2f}" if pct else f"{v:,.{digits}f}"


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"# MCFF-L Net on {doc['dataset']}",
        "",
        f"Training command: `{doc['command']}` (git `{doc.get('train_git_commit') or doc['git_commit']}`)  ",
        f"Report / measurement git commit: `{doc['git_commit']}`  ",
        f"Training hardware: {_hardware(doc.get('train_environment') or doc['environment'])}; "
        f"{doc.get('train_workers')} jobs at a time; training wall time "
        f"{_fmt(doc.get('train_wall_s'), digits=0)} s (all rows)  ",
        f"Latency hardware: {_hardware(doc['environment'], cpu_only=True)}; ONNX Runtime "
        f"{doc['environment'].get('packages', {}).get('onnxruntime', '')}, batch 1, "
        f"{doc['latency_input']}, median, nothing else running  ",
        f"Libraries (report machine): "
        f"{', '.join(f'{k} {v}' for k, v in doc['environment'].get('packages', {}).items())}  ",
        f"Seed: {doc['recipe']['seed']}.",
        "",
        "## Recipe",
        "",
        doc["recipe"]["text"],
        "",
        "## Results (test split, full resolution)",
        "",
        "| row | KD | F1 | IoU | F1 tol | IoU tol | ODS | params | GFLOPs@448 | ORT ms 1t | ORT ms 2t | train s | "
        "peak RSS MB |",
        "|" + "---|" * 13,
    ]
    for r in doc["rows"]:
        lines.append(
            f"| {r['model']} | {r['distill'] or '-'} | {_fmt(r['f1'], True)} | {_fmt(r['iou'], True)} | "
            f"{_fmt(r['f1_tol'], True)} | {_fmt(r['iou_tol'], True)} | {_fmt(r['ods'], True)} | "
            f"{_fmt(r['params'], digits=0)} | {_fmt(r['gflops'])} | {_fmt(r['latency_ms_1t'])} | "
            f"{_fmt(r['latency_ms_2t'])} | {_fmt(r['train_wall_s'], digits=0)} | {_fmt(r['peak_rss_mb'], digits=0)} |"
        )
    lines += [
        "",
        "F1/IoU: strict, threshold 0.5 (released `A_*`). F1 tol / IoU tol: +-2 px (released `M_*` "
        "definitions, threshold 0.5). ODS: best dataset-level strict F1 over thresholds 0.01..0.99. All in %.",
        "GFLOPs count 2 FLOPs per multiply-add. train s: pure training time (evaluation excluded) on the training "
        "hardware, with the other jobs running beside it.",
        "",
        f"Paper (abstract): student F1 {100 * PAPER['f1']:.2f} % / IoU {100 * PAPER['iou']:.2f} % on "
        f"{PAPER['data']}; not directly comparable.",
        "",
    ]
    if doc.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in doc["notes"]], ""]
    return "\n".join(lines)


def _hardware(env: dict[str, Any], cpu_only: bool = False) -> str:
    cpu = f"{env.get('cpu', '?')} ({env.get('cpu_count', '?')} cores)"
    if cpu_only or not env.get("cuda"):
        return cpu
    gpus = ", ".join(env.get("devices", []))
    return f"{gpus} ({env.get('gpu_memory_gib', '?')} GiB), {cpu}, torch {env.get('packages', {}).get('torch', '?')}"


def _notes(ds: str, rows: list[dict[str, Any]], train_env: dict[str, Any]) -> list[str]:
    notes = []
    env = train_env.get("environment") or {}
    if env.get("cuda"):
        notes.append(
            f"Trained and evaluated on {', '.join(env.get('devices', []))}; parameters, GFLOPs and latency measured "
            "on the CPU named above from the packed weights (float16 copies of the trained float32 weights)."
        )
    if any(r.get("weights") == "untrained" for r in rows):
        notes.append(
            "teacher: its trained weights (32.9 M parameters) stayed on the training machine; its metrics come from "
            "there, while params / GFLOPs / latency were measured on the same architecture with random weights (a "
            "segmentation network's compute does not depend on its weight values)."
        )
    if train_env.get("unfinished"):
        notes.append(f"Jobs that did not finish (time limit or failure): {', '.join(train_env['unfinished'])}.")
    if train_env.get("overrides"):
        notes.append(f"Overrides applied to every row: `{' '.join(train_env['overrides'])}`.")
    return notes


def _recipe(ds: str, work: Path) -> dict[str, Any]:
    """The recipe actually run: from the first finished run's resolved config (else ``configs/mcff``)."""
    cfgs = sorted((work / "runs").glob(f"{ds}_*/config.yaml"))
    cfg = load_config(cfgs[0] if cfgs else REPO / "configs" / "mcff" / f"{ds}_student.yaml")
    t, d = cfg.train, cfg.data
    precision = "bfloat16 autocast (AMP)" if t.amp and t.device.startswith("cuda") else "float32"
    text = (
        f"Random {d.imgsz}x{d.imgsz} training crops with random h/v flips, batch {t.batch_size}, {t.epochs} "
        f"epochs, {t.optimizer} lr {t.lr:g} (alpha {t.rmsprop_alpha}, eps {t.rmsprop_eps:g}, no momentum or "
        f"weight decay), constant LR, seed {t.seed}, device {t.device}, {precision}, {t.threads or 'all'} CPU "
        f"thread(s) and {d.workers} loader workers per job"
        + (f", first {d.limit} images of each split only (smoke run)" if d.limit else "")
        + f"; every row uses these settings (configs/mcff/{ds}_*.yaml plus the overrides below). Soft labels: "
        f"teacher at T1 = {T1:g}, 8-bit PNG. Evaluation: the {d.val} split at full resolution, once, after the last "
        "epoch. The paper's recipe (448x448, 100 epochs, ReduceLROnPlateau, early stop) is "
        "configs/mcff/gpu_deepcrack_*.yaml; it was not run."
    )
    return {
        "text": text,
        "epochs": t.epochs,
        "imgsz": d.imgsz,
        "batch_size": t.batch_size,
        "optimizer": t.optimizer,
        "lr": t.lr,
        "seed": t.seed,
        "threads": t.threads,
        "device": t.device,
        "precision": precision,
        "loader_workers": d.workers,
        "limit": d.limit,
        "t1": T1,
        "soft_label_format": "png",
    }


def _overrides(args: argparse.Namespace) -> list[str]:
    sets = [f"{k}={json.dumps(v)}" for k, v in (GPU_RECIPE[args.dataset] if args.recipe == "gpu" else {}).items()]
    if args.data_root:
        sets.append(f"data.root={Path(args.data_root).resolve()}")
    if args.smoke:
        sets += [f"data.limit={args.smoke}", "train.epochs=1", "data.imgsz=64", "train.batch_size=2"]
    return sets + list(args.set)


def _train(args: argparse.Namespace, work: Path, record: dict[str, Any]) -> list[str]:
    sets = _overrides(args)
    deadline = time.monotonic() + args.time_limit if args.time_limit else 0.0
    jobs = _jobs(args.dataset, work, _rows(args), sets, args.device)
    commit = git_commit(REPO)  # the code the jobs start from (the tree may change while they run)
    t0 = time.perf_counter()
    try:
        report = run_jobs(jobs, log_dir=work / "logs", workers=args.workers, launcher=args.launcher,
                          deadline=deadline, tag="mcff-bench")  # fmt: skip
        record.update(report.record)
        failed = list(report.failed)
    finally:
        write_json(work / "jobs.json", record)
    env = environment_info()
    if env["cuda"]:
        import torch

        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    train_env = {
        "environment": env,
        "command": command_line("benchmarks.mcff", args.argv),
        "git_commit": commit,
        "overrides": sets,
        "workers": args.workers,
        "launcher": args.launcher,
        "wall_s": time.perf_counter() - t0,
        "unfinished": failed,
    }
    write_json(work / "train_env.json", train_env)
    return failed


def _measure(args: argparse.Namespace, work: Path) -> None:
    ds = args.dataset
    items, untrained = [], []
    for r in _rows(args, trained=False):
        run = work / "runs" / f"{ds}_{r}"
        if (run / "best.safetensors").exists():
            items.append(f"{r}={run / 'best.safetensors'}")
        elif (run / ARCH_CKPT).exists():
            items.append(f"{r}={run / ARCH_CKPT}")
            untrained.append(r)
    root = Path(load_config(REPO / "configs" / "mcff" / f"{ds}_student.yaml").data.root)
    images = [str((REPO / root / i).resolve()) for i in OVERLAY_IMAGES[ds]]
    cmd = [
        *shlex.split(args.whole),
        *module_cmd("benchmarks.mcff_measure"),
        *items,
        "--out",
        str(work / "measure.json"),
        "--work",
        str(work),
        "--runs",
        str(args.latency_runs),
        "--slow-runs",
        str(args.slow_runs),
        "--untrained",
        *untrained,
        "--overlay-images",
        *images,
        "--overlay-dir",
        str(REPO / "benchmarks" / "results" / _name(args)),
    ]
    subprocess.run(cmd, cwd=REPO, check=True)


def _name(args: argparse.Namespace) -> str:
    return args.name or f"mcff_{args.dataset}{'_smoke' if args.smoke else ''}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.mcff", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", required=True, choices=["deepcrack", "crackforest"])
    p.add_argument("--work", default="", help="work folder (default benchmarks/work/mcff_<dataset>[_smoke])")
    slot, whole = default_launcher("cpu-slot"), default_launcher("cpu-whole")
    p.add_argument("--launcher", default=slot, help="command prefix of every training job (default tools/cpu-slot)")
    p.add_argument("--whole", default=whole, help="command prefix of the measurement (default tools/cpu-whole)")
    p.add_argument("--workers", type=int, default=2, help="jobs run at the same time")
    p.add_argument("--recipe", default="cpu", choices=["cpu", "gpu"], help="gpu: apply GPU_RECIPE to every row")
    p.add_argument("--device", default="", help="train.device of every job and the soft-label device (cuda)")
    p.add_argument("--data-root", default="", help="dataset folder (default: the configs' ../shared/datasets/...)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra override for every row")
    p.add_argument("--smoke", type=int, default=0, help="N: smoke run (first N images, 1 epoch, 64 px crops)")
    p.add_argument("--time-limit", type=float, default=0, help="seconds; then running jobs stop, results are kept")
    p.add_argument("--with-online", action="store_true", help="also train the online-KD student")
    p.add_argument("--skip-measure", action="store_true", help="train (and evaluate) only; no ONNX measurement")
    p.add_argument("--measure-only", action="store_true", help="measure finished/unpacked runs, then report")
    p.add_argument("--report-only", action="store_true", help="only re-assemble the results of finished jobs")
    p.add_argument("--pack", default="", help="write the results archive (.tar, split if over 15 MiB) and exit")
    p.add_argument("--unpack", nargs="+", default=[], help="archives or folders of them to unpack into --work")
    p.add_argument("--rows", nargs="+", choices=[*ROWS, "student_kd_online"], help="train/report only these rows")
    p.add_argument("--name", default="", help="results file stem (default mcff_<dataset>[_smoke])")
    p.add_argument(
        "--latency-runs", type=int, default=TIMED_RUNS, help=f"timed ONNX Runtime runs (after {WARMUP_RUNS} warm-up)"
    )
    p.add_argument("--slow-runs", type=int, default=5, help="latency repeats for models over 100 GFLOPs")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    require_clean_tree(REPO)  # results are written from a committed tree only
    t0, ds = time.perf_counter(), args.dataset
    work = Path(args.work or REPO / "benchmarks" / "work" / f"mcff_{ds}{'_smoke' if args.smoke else ''}").resolve()
    if args.pack:
        print(f"[mcff-bench] packed {[str(p) for p in pack(work, Path(args.pack), f'{ds}_teacher')]}")
        return 0
    if args.unpack:
        names = unpack([Path(a) for a in args.unpack], work, f"{ds}_teacher")
        print(f"[mcff-bench] unpacked {len(names)} files into {work}")
        return 0
    (work / "logs").mkdir(parents=True, exist_ok=True)
    rec_file = work / "jobs.json"
    record = json.loads(rec_file.read_text()) if rec_file.is_file() else {}
    failed: list[str] = []
    if not (args.report_only or args.measure_only):
        failed = _train(args, work, record)
    if not (args.report_only or args.skip_measure):
        _measure(args, work)
    _report(args, work, record, time.perf_counter() - t0)
    if failed:
        print(f"[mcff-bench] unfinished jobs: {failed}")
    return 1 if failed else 0


def _report(args: argparse.Namespace, work: Path, record: dict[str, Any], wall_s: float) -> None:
    ds = args.dataset
    meas_file, env_file = work / "measure.json", work / "train_env.json"
    measured = json.loads(meas_file.read_text()) if meas_file.is_file() else {}
    train_env = json.loads(env_file.read_text()) if env_file.is_file() else {}
    rows = [r for r in (_row(ds, row, work, measured, record) for row in _rows(args, trained=False)) if r]
    doc = {
        "benchmark": f"mcff_{ds}",
        "dataset": ds,
        "command": train_env.get("command", f"python -m benchmarks.mcff --dataset {ds}"),
        "git_commit": git_commit(REPO),
        "train_git_commit": train_env.get("git_commit"),
        "environment": environment_info(),
        "train_environment": train_env.get("environment"),
        "train_overrides": train_env.get("overrides", []),
        "train_workers": train_env.get("workers", args.workers),
        "recipe": _recipe(ds, work),
        "latency_input": _latency_input(measured, args),
        "wall_s": wall_s,
        "train_wall_s": train_env.get("wall_s"),
        "jobs": record,
        "paper": PAPER,
        "rows": rows,
        "notes": _notes(ds, rows, train_env),
    }
    write_results(_name(args), doc, markdown)


def _latency_input(measured: dict[str, Any], args: argparse.Namespace) -> str:
    """What the measured latencies were timed on: the shared timer's inputs (measure.json rows with a ``warmup``),
    else the timer before it (one fixed-seed random tensor, 2 warm-up runs)."""
    details = [v for m in measured.values() for k, v in m.items() if k.startswith("latency_detail_")]
    if details and all("warmup" in d for d in details):
        runs = sorted({d["runs"] for d in details})
        images = min((d.get("inputs", LATENCY_IMAGES) for d in details), default=LATENCY_IMAGES)
        return (f"1x3x448x448 float32 from {images} {INPUT_KIND}, {WARMUP_RUNS} warm-up then "
                f"{' / '.join(map(str, runs))} timed runs")  # fmt: skip
    if details:
        return "1x3x448x448 float32 (one fixed-seed random tensor), 2 warm-up runs"
    return "1x3x448x448 float32"


if __name__ == "__main__":
    sys.exit(main())
