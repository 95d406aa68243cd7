"""MCFF-L Net benchmark on DeepCrack or CrackForest (one command per dataset).

    python benchmarks/mcff.py --dataset deepcrack      # ~5 h on 2 CPU cores (two 1-thread jobs at a time)
    python benchmarks/mcff.py --dataset crackforest    # ~2 h
    python benchmarks/mcff.py --dataset deepcrack --report-only

Rows: the teacher, the student without distillation (released and 3x3 ground-truth dilation), the student distilled
offline with each temperature strategy (standard, hyperthermal, non-isothermal), and a peer U-Net of similar size
(segmentation_models_pytorch, MobileNetV3-small encoder, random init), all trained with the recipe of
``configs/mcff/<dataset>_*.yaml`` (same crops, epochs, optimizer, seed and 1 thread per job). Step 2 (soft labels at
T1 = 10 from the teacher) runs as two shards. Every job is a ``python -m kdinspect ...`` process behind ``--launcher``
(``/work/tools/cpu-slot`` on the shared machine); finished jobs are skipped on a re-run, so an interrupted benchmark
resumes. Test metrics come from each run's final full-resolution evaluation (``results.json``). Then, under
``--whole`` (``/work/tools/cpu-whole``), ``benchmarks/mcff_measure.py`` measures parameters, GFLOPs and ONNX Runtime
latency at 448x448 and draws overlays. Results: ``benchmarks/results/mcff_<dataset>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from kdinspect.config import load_config  # noqa: E402
from kdinspect.distill.soft_labels import soft_label_dirs  # noqa: E402
from kdinspect.utils.env import environment_info, git_commit  # noqa: E402

T1 = 10.0
ROWS = (
    "teacher",
    "student",
    "student_dil3x3",
    "student_kd_standard",
    "student_kd_hyperthermal",
    "student_kd_non_isothermal",
    "peer_unet",
)
OVERLAY_IMAGES = {
    "deepcrack": ["test_img/11125-1.jpg", "test_img/11215-5.jpg"],
    "crackforest": ["image/001.jpg", "image/011.jpg"],
}
PAPER = {"f1": 0.8570, "iou": 0.7822, "params": 1_179_392, "data": "the authors' Stage_4 pavement set (not public)"}


@dataclass
class Job:
    """One process: a training row or a soft-label shard."""

    name: str
    cmd: list[str]
    done_file: Path
    after: list[str] = field(default_factory=list)


def _jobs(ds: str, work: Path, with_online: bool) -> list[Job]:
    runs, soft = work / "runs", work / "softlabels" / f"{ds}_T10"
    py = [sys.executable, "-m", "kdinspect"]
    jobs = []
    rows = [*ROWS, "student_kd_online"] if with_online else list(ROWS)
    for row in rows:
        name = f"{ds}_{row}"
        cmd = [*py, "train", "--config", f"configs/mcff/{name}.yaml", "--out-dir", str(runs), "--no-progress"]
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
    teacher_ckpt = runs / f"{ds}_teacher" / "best.safetensors"
    for k in range(2):
        cmd = [*py, "softlabels", str(teacher_ckpt), "--out", str(soft), "--t1", str(T1), "--shard", f"{k}/2"]
        cmd = ["sh", "-c", shlex.join(cmd) + f" && touch {shlex.quote(str(soft / f'.shard{k}.done'))}"]
        jobs.append(Job(f"{ds}_softlabels_{k}", cmd, soft / f".shard{k}.done", [f"{ds}_teacher"]))
    return jobs


def run_jobs(jobs: list[Job], launcher: list[str], workers: int, log_dir: Path, record: dict[str, Any]) -> None:
    """Run the jobs (dependencies first, ``workers`` at a time); per-job wall time and peak RSS go to ``record``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    pending = [j for j in jobs if not j.done_file.exists()]
    done = {j.name for j in jobs if j.done_file.exists()}
    running: dict[int, tuple[Job, subprocess.Popen, float]] = {}
    while pending or running:
        for job in [j for j in pending if all(a in done for a in j.after)]:
            if len(running) >= workers:
                break
            log = (log_dir / f"{job.name}.log").open("a")
            print(f"[mcff-bench] start {job.name}", flush=True)
            proc = subprocess.Popen([*launcher, *job.cmd], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            running[proc.pid] = (job, proc, time.perf_counter())
            pending.remove(job)
        if not running:
            raise RuntimeError(f"jobs cannot start (failed dependencies?): {[j.name for j in pending]}")
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        job, _, t0 = running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        record[job.name] = {"wall_s": time.perf_counter() - t0, "peak_rss_mb": usage.ru_maxrss / 1024, "rc": code}
        print(f"[mcff-bench] end {job.name}: rc={code} ({record[job.name]['wall_s']:.0f} s)", flush=True)
        if code != 0 or not job.done_file.exists():
            raise RuntimeError(f"job {job.name} failed (rc={code}); see {log_dir / (job.name + '.log')}")
        done.add(job.name)


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
        f"Command: `{doc['command']}`  ",
        f"Git commit: `{doc['git_commit']}`  ",
        f"Hardware: {doc['environment']['cpu']} ({doc['environment']['cpu_count']} cores)  ",
        f"Training: {doc['recipe']['threads']} thread per job, two jobs at a time; latency: ONNX Runtime "
        f"{doc['environment'].get('packages', {}).get('onnxruntime', '')}, batch 1, "
        f"{doc['latency_input']}, median, nothing else running  ",
        f"Libraries: {', '.join(f'{k} {v}' for k, v in doc['environment'].get('packages', {}).items())}  ",
        f"Seed: {doc['recipe']['seed']}. Benchmark wall time: {doc['wall_s'] / 3600:.2f} h "
        "(this invocation; queueing behind other jobs included)",
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
        "GFLOPs count 2 FLOPs per multiply-add. train s: pure training time (evaluation excluded), 1 thread.",
        "",
        f"Paper (abstract): student F1 {100 * PAPER['f1']:.2f} % / IoU {100 * PAPER['iou']:.2f} % on "
        f"{PAPER['data']}; not directly comparable.",
        "",
    ]
    if doc.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in doc["notes"]], ""]
    return "\n".join(lines)


def _recipe(ds: str) -> dict[str, Any]:
    cfg = load_config(REPO / "configs" / "mcff" / f"{ds}_student.yaml")
    t, d = cfg.train, cfg.data
    text = (
        f"Random {d.imgsz}x{d.imgsz} training crops with random h/v flips, batch {t.batch_size}, {t.epochs} "
        f"epochs, {t.optimizer} lr {t.lr:g} (alpha {t.rmsprop_alpha}, eps {t.rmsprop_eps:g}, no momentum or "
        f"weight decay), constant LR, seed {t.seed}, {t.threads} thread per job; every row uses these settings "
        f"(configs/mcff/{ds}_*.yaml). Soft labels: teacher at T1 = {T1:g}, 8-bit PNG. Evaluation: the "
        f"{d.val} split at full resolution, once, after the last epoch. The paper's recipe (448x448, 100 "
        "epochs, ReduceLROnPlateau, early stop) is configs/mcff/gpu_deepcrack_*.yaml; it was not run here "
        "(no GPU)."
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
        "t1": T1,
        "soft_label_format": "png",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=["deepcrack", "crackforest"])
    p.add_argument("--work", default="", help="work folder (default benchmarks/work/mcff_<dataset>)")
    p.add_argument("--launcher", default="/work/tools/cpu-slot" if Path("/work/tools/cpu-slot").exists() else "")
    p.add_argument("--whole", default="/work/tools/cpu-whole" if Path("/work/tools/cpu-whole").exists() else "")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--with-online", action="store_true", help="also train the online-KD student")
    p.add_argument("--report-only", action="store_true", help="only re-assemble the results of finished jobs")
    p.add_argument("--latency-runs", type=int, default=20)
    args = p.parse_args(argv)
    t0, ds = time.perf_counter(), args.dataset
    work = Path(args.work or REPO / "benchmarks" / "work" / f"mcff_{ds}").resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    rec_file, meas_file = work / "jobs.json", work / "measure.json"
    record = json.loads(rec_file.read_text()) if rec_file.is_file() else {}
    if not args.report_only:
        try:
            run_jobs(_jobs(ds, work, args.with_online), shlex.split(args.launcher), args.workers, work / "logs", record)
        finally:
            rec_file.write_text(json.dumps(record, indent=2))
        rows = [r for r in ROWS if (work / "runs" / f"{ds}_{r}" / "best.safetensors").exists()]
        items = [f"{r}={work / 'runs' / f'{ds}_{r}' / 'best.safetensors'}" for r in rows]
        root = Path(load_config(REPO / "configs" / "mcff" / f"{ds}_student.yaml").data.root)
        images = [str((REPO / root / i).resolve()) for i in OVERLAY_IMAGES[ds]]
        cmd = [
            *shlex.split(args.whole),
            sys.executable,
            str(REPO / "benchmarks" / "mcff_measure.py"),
            *items,
            "--out",
            str(meas_file),
            "--work",
            str(work),
            "--runs",
            str(args.latency_runs),
            "--overlay-images",
            *images,
            "--overlay-dir",
            str(REPO / "benchmarks" / "results" / f"mcff_{ds}"),
        ]
        subprocess.run(cmd, cwd=REPO, check=True)
    measured = json.loads(meas_file.read_text()) if meas_file.is_file() else {}
    rows = [r for r in (_row(ds, row, work, measured, record) for row in [*ROWS, "student_kd_online"]) if r]
    env = environment_info()
    doc = {
        "benchmark": f"mcff_{ds}",
        "dataset": ds,
        "command": f"python benchmarks/mcff.py --dataset {ds}",
        "git_commit": git_commit(REPO),
        "environment": env,
        "recipe": _recipe(ds),
        "latency_input": "1x3x448x448 float32",
        "wall_s": time.perf_counter() - t0,
        "jobs": record,
        "paper": PAPER,
        "rows": rows,
    }
    out = REPO / "benchmarks" / "results" / f"mcff_{ds}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(doc))
    print(f"[mcff-bench] wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
