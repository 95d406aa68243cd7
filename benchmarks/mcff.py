"""MCFF-L Net benchmark on DeepCrack or CrackForest (one command per dataset).

    python benchmarks/mcff.py --dataset deepcrack      # ~5 h on 2 CPU cores (two 1-thread jobs at a time)
    python benchmarks/mcff.py --dataset crackforest    # ~2 h
    python benchmarks/mcff.py --dataset deepcrack --report-only
    python benchmarks/mcff.py --dataset deepcrack --recipe gpu --device cuda --launcher "" --workers 8 --skip-measure
    python benchmarks/mcff.py --dataset deepcrack --pack OUT/mcff_deepcrack.tar   # then: --unpack, --measure-only

Rows: the teacher, the student without distillation (released and 3x3 ground-truth dilation), the student distilled
offline with each temperature strategy (standard, hyperthermal, non-isothermal), kdinspect's lite student (the
student's paths at 1/4 resolution, not in the paper) and a peer U-Net of similar size (segmentation_models_pytorch,
MobileNetV3-small encoder, random init), all trained with the recipe of
``configs/mcff/<dataset>_*.yaml`` (same crops, epochs, optimizer, seed and 1 thread per job). Step 2 (soft labels at
T1 = 10 from the teacher) runs as two shards. Every job is a ``python -m kdinspect ...`` process behind ``--launcher``
(``tools/cpu-slot``: one CPU slot per core); finished jobs are skipped on a re-run, so an interrupted benchmark
resumes. ``--rows`` runs (and reports) a subset under its own ``--name``. Test metrics come from each run's final
full-resolution evaluation (``results.json``). Then, under ``--whole`` (``tools/cpu-whole``),
``benchmarks/mcff_measure.py`` measures parameters, GFLOPs and ONNX Runtime latency at 448x448 and draws overlays.
Results: ``benchmarks/results/mcff_<dataset>.json`` (or ``<name>.json``) and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "benchmarks")]

from mcff_pack import ARCH_CKPT, pack, unpack  # noqa: E402

from kdinspect.config import load_config  # noqa: E402
from kdinspect.distill.soft_labels import soft_label_dirs  # noqa: E402
from kdinspect.utils.env import environment_info, git_commit, require_clean_tree  # noqa: E402

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


@dataclass
class Job:
    """One process: a training row or a soft-label shard."""

    name: str
    cmd: list[str]
    done_file: Path
    after: list[str] = field(default_factory=list)


def _rows(args: argparse.Namespace, trained: bool = True) -> list[str]:
    """The rows this run trains (``--rows``, else all, the online-KD student with --with-online) or, with
    ``trained=False``, measures and reports (``--rows``, else every row that has a finished run)."""
    if args.rows:
        return list(args.rows)
    return [*ROWS, "student_kd_online"] if args.with_online or not trained else list(ROWS)


def _jobs(ds: str, work: Path, rows: list[str], sets: list[str], device: str) -> list[Job]:
    runs, soft = work / "runs", work / "softlabels" / f"{ds}_T10"
    py = [sys.executable, "-m", "kdinspect"]
    extra = [a for kv in sets for a in ("--set", kv)] + (["--device", device] if device else [])
    jobs = []
    for row in rows:
        name = f"{ds}_{row}"
        cmd = [*py, "train", "--config", f"configs/mcff/{name}.yaml", "--out-dir", str(runs), "--no-progress", *extra]
        after = []
        if row.startswith("student_kd_") and row != "student_kd_online":
            cmd += ["--set", f"data.params.soft_labels={json.dumps(soft_label_dirs(soft, 'png'))}"]
            after = [f"{ds}_softlabels_0", f"{ds}_softlabels_1"]
        elif row == "student_kd_online":
            cmd += ["--teacher", str(runs / f"{ds}_teacher" / "best.safetensors")]
            after = [f"{ds}_teacher"]
        if (runs / name / "last.safetensors").exists():
            cmd.append("--resume")
        jobs.append(Job(name, cmd, runs / name / "results.json", after))
    if not any(a.startswith(f"{ds}_softlabels_") for j in jobs for a in j.after):
        return jobs  # no selected row needs the soft labels
    teacher_ckpt = runs / f"{ds}_teacher" / "best.safetensors"
    dev = ["--device", device] if device else []
    for k in range(2):
        cmd = [*py, "softlabels", str(teacher_ckpt), "--out", str(soft), "--t1", str(T1), "--shard", f"{k}/2", *dev]
        cmd = ["sh", "-c", shlex.join(cmd) + f" && touch {shlex.quote(str(soft / f'.shard{k}.done'))}"]
        jobs.append(Job(f"{ds}_softlabels_{k}", cmd, soft / f".shard{k}.done", [f"{ds}_teacher"]))
    return jobs


def _start(job: Job, launcher: list[str], log_dir: Path, env: dict[str, str]) -> subprocess.Popen:
    print(f"[mcff-bench] start {job.name}", flush=True)
    with (log_dir / f"{job.name}.log").open("a") as log:
        return subprocess.Popen([*launcher, *job.cmd], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def run_jobs(
    jobs: list[Job], launcher: list[str], workers: int, log_dir: Path, record: dict[str, Any], deadline: float = 0.0
) -> list[str]:
    """Run the jobs (dependencies first, ``workers`` at a time); per-job wall time and peak RSS go to ``record``.

    A failed job does not stop the others (its dependents are skipped). At ``deadline`` (a ``time.monotonic()``
    value; 0 = none) the running jobs are terminated and nothing new starts. Returns the names of the jobs that did
    not finish."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    pending = [j for j in jobs if not j.done_file.exists()]
    done = {j.name for j in jobs if j.done_file.exists()}
    failed: list[str] = []
    running: dict[int, tuple[Job, subprocess.Popen, float]] = {}
    while pending or running:
        for job in [j for j in pending if any(a in failed for a in j.after)]:
            pending.remove(job)
            failed.append(job.name)
            record[job.name] = {"rc": "skipped (a dependency failed)"}
        for job in [j for j in pending if all(a in done for a in j.after)]:
            if len(running) >= workers:
                break
            proc = _start(job, launcher, log_dir, env)
            running[proc.pid] = (job, proc, time.perf_counter())
            pending.remove(job)
        if not running:
            failed += [j.name for j in pending]
            break
        if deadline and time.monotonic() > deadline:
            for job, proc, _ in running.values():
                print(f"[mcff-bench] time limit: stopping {job.name}", flush=True)
                proc.terminate()
            for job, proc, t0 in running.values():
                proc.wait()
                record[job.name] = {"wall_s": time.perf_counter() - t0, "rc": "stopped at the time limit"}
                failed.append(job.name)
            failed += [j.name for j in pending]
            break
        pid, status, usage = os.wait4(-1, os.WNOHANG)
        if pid == 0 or pid not in running:
            time.sleep(0.5)
            continue
        job, _, t0 = running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        record[job.name] = {"wall_s": time.perf_counter() - t0, "peak_rss_mb": usage.ru_maxrss / 1024, "rc": code}
        print(f"[mcff-bench] end {job.name}: rc={code} ({record[job.name]['wall_s']:.0f} s)", flush=True)
        if code != 0 or not job.done_file.exists():
            print(f"[mcff-bench] job {job.name} failed; see {log_dir / (job.name + '.log')}", flush=True)
            failed.append(job.name)
        else:
            done.add(job.name)
    return failed


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
        failed = run_jobs(jobs, shlex.split(args.launcher), args.workers, work / "logs", record, deadline)
    finally:
        (work / "jobs.json").write_text(json.dumps(record, indent=2))
    env = environment_info()
    if env["cuda"]:
        import torch

        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    train_env = {
        "environment": env,
        "command": shlex.join(["python", "benchmarks/mcff.py", *sys.argv[1:]]),
        "git_commit": commit,
        "overrides": sets,
        "workers": args.workers,
        "launcher": args.launcher,
        "wall_s": time.perf_counter() - t0,
        "unfinished": failed,
    }
    (work / "train_env.json").write_text(json.dumps(train_env, indent=2))
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
        sys.executable,
        str(REPO / "benchmarks" / "mcff_measure.py"),
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
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=["deepcrack", "crackforest"])
    p.add_argument("--work", default="", help="work folder (default benchmarks/work/mcff_<dataset>[_smoke])")
    slot, whole = (str(REPO / "tools" / n) if shutil.which("flock") else "" for n in ("cpu-slot", "cpu-whole"))
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
    p.add_argument("--latency-runs", type=int, default=20)
    p.add_argument("--slow-runs", type=int, default=5, help="latency repeats for models over 100 GFLOPs")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
        "command": train_env.get("command", f"python benchmarks/mcff.py --dataset {ds}"),
        "git_commit": git_commit(REPO),
        "train_git_commit": train_env.get("git_commit"),
        "environment": environment_info(),
        "train_environment": train_env.get("environment"),
        "train_overrides": train_env.get("overrides", []),
        "train_workers": train_env.get("workers", args.workers),
        "recipe": _recipe(ds, work),
        "latency_input": "1x3x448x448 float32",
        "wall_s": wall_s,
        "train_wall_s": train_env.get("wall_s"),
        "jobs": record,
        "paper": PAPER,
        "rows": rows,
        "notes": _notes(ds, rows, train_env),
    }
    out = REPO / "benchmarks" / "results" / f"{_name(args)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(doc))
    print(f"[mcff-bench] wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    sys.exit(main())
