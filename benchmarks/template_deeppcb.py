"""Golden-template benchmark on DeepPCB (one command): the HSD teacher, the lite student and the HSD-distilled lite
student, each trained once on the tested image alone (``input: image``) and once on the image + its defect-free
template (``input: pair``, early fusion, docs/template.md), same recipe and seeds; then ONNX Runtime latency of every
row, and a robustness check of the reference-aware students with the templates moved by a few pixels and a degree,
evaluated with and without registration.

    python -m benchmarks.template_deeppcb                      # every job, then latency + robustness, then the report
    python -m benchmarks.template_deeppcb --inputs pair --workers 2   # the pair rows only, two jobs at once
    python -m benchmarks.template_deeppcb --report             # re-aggregate finished jobs only

Jobs run as ``python -m benchmarks.template_deeppcb --job ID`` behind ``--launcher`` (``tools/cpu-slot``: 1 torch
thread each), at most ``--workers`` at once (the shared runner, ``benchmarks.common.jobs``). A job trains (``--resume``
from its ``last.safetensors`` when it was interrupted), evaluates its final weights on the shared test list with
kdinspect's COCO evaluator, exports the decode-only ONNX graph (two inputs for pair rows) and writes ``row.json`` in
``benchmarks/work/template_deeppcb/<ID>/`` (git-ignored). ``train_wall_s`` is the sum over the job's attempts: a
finished attempt counts its whole wall time, an interrupted one the time until its last checkpoint (work after that
was lost and is done again), less the time the jobs were stopped on purpose (``pauses.txt``, :func:`paused_s`).
The report ``benchmarks/results/template_deeppcb.{json,md}`` is rewritten after every finished job.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO
from benchmarks.common.jobs import Job, default_launcher, module_cmd, run_jobs

NAME = "template_deeppcb"
SHARED = Path(os.environ.get("KDINSPECT_SHARED_DATA", REPO.parent / "shared" / "datasets"))
INPUTS = ("pair", "image")  # launch order: the reference-aware rows first
ROLES = ("student", "teacher", "student_kd")
CONFIGS = {
    ("image", "teacher"): "deeppcb_teacher.yaml",
    ("image", "student"): "deeppcb_student_lite.yaml",
    ("image", "student_kd"): "deeppcb_student_hsd_lite.yaml",
    ("pair", "teacher"): "deeppcb_teacher_ref.yaml",
    ("pair", "student"): "deeppcb_student_ref_lite.yaml",
    ("pair", "student_kd"): "deeppcb_student_hsd_ref_lite.yaml",
}
LABEL = {"teacher": "HSD teacher (FPN-256)", "student": "lite student", "student_kd": "lite student + HSD LD"}
# robustness: every template moved by (dx, dy) px and rotated by degrees before registration
PERTURB = (3, 2, 1.0)
LATENCY_NOTE = (
    " Decode-only graphs (host NMS not timed); pair graphs get the image and its template. Measured under "
    "tools/cpu-whole."
)


def work_dir(args: argparse.Namespace) -> Path:
    return REPO / "benchmarks" / "work" / (NAME + (f"-smoke{args.smoke}" if args.smoke else ""))


def job_id(inp: str, role: str, seed: int) -> str:
    return f"{inp}_{role}_s{seed}"


def jobs(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """(input, role, seed) in launch order: the undistilled students of both inputs first (no teacher needed; the
    image-vs-pair comparison), then the teachers, then the distilled students."""
    out = []
    for role in ROLES:
        for inp in args.inputs:
            out += [(inp, role, s) for s in (args.seeds[:1] if role == "teacher" else args.seeds)]
    return out


# --------------------------------------------------------------------------- one job
def _config(args: argparse.Namespace, inp: str, role: str, seed: int) -> Any:
    from kdinspect.config import load_config

    wd, jid = work_dir(args), job_id(inp, role, seed)
    overrides = [
        f"data.root={SHARED / 'deeppcb'}", f"data.imgsz={args.imgsz}", f"train.epochs={args.epochs}",
        f"train.seed={seed}", f"train.threads={args.threads}", "train.eval_interval=0", f"train.out_dir={wd}",
        f"train.name={jid}", f"data.limit={args.smoke}", f"train.device={args.device}",
    ]  # fmt: skip
    if role == "student_kd":
        overrides.append(f"distill.teacher={wd / job_id(inp, 'teacher', args.seeds[0]) / 'last.safetensors'}")
    if (wd / jid / "last.safetensors").exists():
        overrides.append("train.resume=true")
    return load_config(REPO / "configs" / "hsd" / CONFIGS[(inp, role)], overrides)


def paused_s(work: Path, start: float, end: float) -> float:
    """Seconds of [start, end] during which the benchmark's jobs were stopped on purpose (``kill -STOP`` while
    something else needed the CPU), from ``<work>/pauses.txt``: lines ``paused <ISO time> ...`` and
    ``resumed <ISO time> ...`` in pairs (a pause without its resume runs to ``end``)."""
    from datetime import datetime

    path = work / "pauses.txt"
    if not path.exists():
        return 0.0
    total, since = 0.0, None
    for line in path.read_text().splitlines():
        word, _, rest = line.partition(" ")
        if word not in ("paused", "resumed") or not rest:
            continue
        t = datetime.fromisoformat(rest.split()[0].replace("Z", "+00:00")).timestamp()
        if word == "paused":
            since = t
        elif since is not None:
            total += max(0.0, min(t, end) - max(since, start))
            since = None
    if since is not None:
        total += max(0.0, end - max(since, start))
    return total


def _attempts_wall(out: Path, start: float) -> float:
    """Seconds of the earlier, interrupted attempts (start -> their last checkpoint), and this attempt's start
    recorded in ``attempts.json``."""
    path, last = out / "attempts.json", out / "last.safetensors"
    attempts = json.loads(path.read_text()) if path.exists() else []
    if attempts and attempts[-1].get("end") is None:
        attempts[-1]["end"] = last.stat().st_mtime if last.exists() else attempts[-1]["start"]
    earlier = sum(max(a["end"] - a["start"] - paused_s(out.parent, a["start"], a["end"]), 0.0) for a in attempts)
    attempts.append({"start": start, "end": None})
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(attempts))
    return earlier


def run_job(args: argparse.Namespace, jid: str) -> None:
    from benchmarks.common.measure import count_flops, count_params
    from benchmarks.hsd import _device_name
    from kdinspect.api import train
    from kdinspect.engine.checkpoint import load_model
    from kdinspect.export.onnx import export_onnx
    from kdinspect.utils.io import write_json

    known = {job_id(*j): j for j in jobs(args)}
    if jid not in known:
        raise SystemExit(f"unknown job {jid!r}; valid: {sorted(known)}")
    inp, role, seed = known[jid]
    import torch

    torch.set_num_threads(args.threads)
    out = work_dir(args) / jid
    start = time.time()
    earlier = _attempts_wall(out, start)
    cfg = _config(args, inp, role, seed)
    result = train(cfg, progress=False)  # eval_interval 0: one evaluation, of the final weights (best == last)
    wall = earlier + time.time() - start - paused_s(out.parent, start, time.time())
    loaded = load_model(result.last)
    onnx = out / f"{jid}_raw.onnx"
    export_onnx(loaded.model, onnx, (args.imgsz, args.imgsz), "detection", loaded.classes, cfg.model.name, 17,
                False, False)  # fmt: skip
    p = cfg.model.params
    m = result.metrics
    row = {
        "name": f"{LABEL[role]}, {inp}", "job": jid, "input": inp, "role": role, "seed": seed,
        "model": cfg.model.name, "fusion": p.get("fusion", "") if inp == "pair" else "",
        "epochs": args.epochs, "imgsz": args.imgsz, "device": _device_name(args.device), "threads": args.threads,
        "train_wall_s": round(wall, 1), "params": count_params(loaded.model),
        "gflops": count_flops(loaded.model.inference_module(nms=False), args.imgsz) if inp == "image" else None,
        "mAP50": m["mAP50"], "mAP50_95": m["mAP"], "mAP75": m["mAP75"],
        "per_class_AP50": {k[5:]: v for k, v in m.items() if k.startswith("AP50_")},
        "distill": "HSD LD from the teacher of the same input" if role == "student_kd" else "",
        "onnx": onnx.name, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip
    write_json(out / "row.json", row)
    attempts = json.loads((out / "attempts.json").read_text())
    attempts[-1]["end"] = time.time()
    (out / "attempts.json").write_text(json.dumps(attempts))


# --------------------------------------------------------------------------- latency and robustness (run alone)
def _inputs(args: argparse.Namespace, n: int = 8) -> list[dict[str, Any]]:
    """``n`` test pairs spread over the test list as ONNX feeds: ``images`` and ``references``."""
    from benchmarks.common.measure import image_inputs
    from kdinspect.config import DataConfig
    from kdinspect.data import read_split

    cfg = DataConfig(format="deeppcb", root=str(SHARED / "deeppcb"), val="test", imgsz=args.imgsz)
    cfg.limit = args.smoke
    recs = read_split(cfg, "val").records
    recs = recs[:: max(len(recs) // n, 1)][:n]
    size = (args.imgsz, args.imgsz)
    imgs = image_inputs([r.image for r in recs], size)
    refs = image_inputs([r.extra["template"] for r in recs], size)
    return [{"images": a, "references": b} for a, b in zip(imgs, refs, strict=True)]


def run_measure(args: argparse.Namespace) -> None:
    """Latency of every finished row's decode-only graph (1 and 2 ORT threads; a single-image graph gets ``images``
    only), and the robustness evaluations of the pair students (templates moved by PERTURB; align none / ecc)."""
    from benchmarks.common.measure import TIMED_RUNS, WARMUP_RUNS, latency_method, ort_session, time_calls
    from kdinspect.api import evaluate
    from kdinspect.utils.env import cpu_model
    from kdinspect.utils.io import write_json

    wd = work_dir(args)
    feeds = _inputs(args)
    path = wd / "measure.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    out: dict[str, Any] = {"cpu": cpu_model(), "method": latency_method(TIMED_RUNS), "latency": {}, "robustness": {}}
    out |= {k: done.get(k, {}) for k in ("latency", "robustness")}
    for row_file in sorted(wd.glob("*/row.json")):
        row = json.loads(row_file.read_text())
        jid = row["job"]
        if jid not in out["latency"]:
            lat = {}
            for t in (1, 2):
                sess = ort_session(row_file.parent / row["onnx"], t)
                names = [i.name for i in sess.get_inputs()]
                lat[f"{t}t"] = time_calls(lambda f, s=sess, n=names: s.run(None, {k: f[k] for k in n}), feeds,
                                          WARMUP_RUNS, TIMED_RUNS)  # fmt: skip
            out["latency"][jid] = lat
            print(f"[template-bench] latency {jid}: {lat['1t']['median_ms']:.1f} ms (1t)", flush=True)
        if row["input"] == "pair" and row["role"] != "teacher" and jid not in out["robustness"]:
            ckpt = row_file.parent / "last.safetensors"
            dx, dy, deg = PERTURB
            base = [f"data.root={SHARED / 'deeppcb'}", f"data.limit={args.smoke}"]
            rob = {}
            for key, extra in (
                ("aligned_templates", ["data.params.align=none"]),
                ("moved_no_registration", ["data.params.align=none"]),
                ("moved_ecc", ["data.params.align=ecc"]),
            ):
                ov = (
                    base
                    + extra
                    + ([] if key == "aligned_templates" else [f"data.params.reference_perturb=[{dx},{dy},{deg}]"])
                )
                m = evaluate(ckpt, ov, device=args.device)
                rob[key] = {"mAP50": m["mAP50"], "mAP50_95": m["mAP"]}
            out["robustness"][jid] = rob
            print(f"[template-bench] robustness {jid}: {rob}", flush=True)
        write_json(path, out)


# --------------------------------------------------------------------------- report
def _median(vals: list[float]) -> float | None:
    return statistics.median(vals) if vals else None


def build_doc(args: argparse.Namespace, wall_s: float | None = None) -> dict[str, Any]:
    from benchmarks.common.results import provenance

    wd = work_dir(args)
    measure = json.loads((wd / "measure.json").read_text()) if (wd / "measure.json").exists() else {}
    rows = []
    for row_file in sorted(wd.glob("*/row.json")):
        row = json.loads(row_file.read_text())
        env = row_file.parent / "env.json"  # the commit the job trained at (this report may be written later)
        row["train_git_commit"] = json.loads(env.read_text()).get("git_commit") if env.exists() else None
        lat = measure.get("latency", {}).get(row["job"])
        row["latency_ms_1t"] = lat["1t"]["median_ms"] if lat else None
        row["latency_ms_2t"] = lat["2t"]["median_ms"] if lat else None
        rows.append(row)
    shown = ("teacher", "student", "student_kd")
    rows.sort(key=lambda r: (INPUTS[::-1].index(r["input"]), shown.index(r["role"]), r["seed"]))
    summary: dict[str, Any] = {}
    for inp in ("image", "pair"):
        for role in ROLES:
            sel = [r for r in rows if r["input"] == inp and r["role"] == role]
            if sel:
                summary[f"{inp}_{role}"] = {
                    "n": len(sel), "seeds": [r["seed"] for r in sel],
                    "mAP50": _median([r["mAP50"] for r in sel]), "mAP50_95": _median([r["mAP50_95"] for r in sel]),
                    "latency_ms_1t": _median([r["latency_ms_1t"] for r in sel if r["latency_ms_1t"] is not None]),
                }  # fmt: skip
    goals: dict[str, Any] = {}
    kd, img_st = summary.get("pair_student_kd"), summary.get("image_student")
    if kd:
        goals["pair_student_kd_mAP50"] = kd["mAP50"]
        goals["pair_student_kd_mAP50_goal_0.97_met"] = kd["mAP50"] >= 0.97
    if kd and img_st and kd["latency_ms_1t"] and img_st["latency_ms_1t"]:
        ratio = kd["latency_ms_1t"] / img_st["latency_ms_1t"]
        goals["latency_ratio_1t_pair_student_kd_over_image_student"] = round(ratio, 3)
        goals["latency_goal_1.25x_met"] = ratio <= 1.25
    for inp in ("image", "pair"):
        s, k, t = (summary.get(f"{inp}_{r}") for r in ("student", "student_kd", "teacher"))
        if s and k:
            goals[f"{inp}_kd_gain_mAP50"] = round(k["mAP50"] - s["mAP50"], 4)
        if t and k:
            goals[f"{inp}_teacher_minus_student_kd_mAP50"] = round(t["mAP50"] - k["mAP50"], 4)
    return provenance(f"benchmarks.{NAME}", args.argv[3:], check=not args.smoke) | {
        "dataset": "DeepPCB (shared subset: 501 trainval / 252 test pairs; the official test list)",
        "recipe": (
            f"{args.epochs} epochs at {args.imgsz} px for every row, seeds {list(args.seeds)} (teacher: the first). "
            "configs/hsd/deeppcb_*.yaml: SGD momentum 0.9, wd 1e-4, lr 0.01, 300 warm-up iterations, cosine, batch 8, "
            "horizontal flip; final weights evaluated at score >= 0.05, NMS IoU 0.6, <= 100 boxes (COCO bbox, "
            "faster-coco-eval). Pair rows: early fusion (image + |image - template|), aligned DeepPCB templates."
        ),
        "robustness_perturbation": {"dx_px": PERTURB[0], "dy_px": PERTURB[1], "degrees": PERTURB[2]},
        "latency_method": "" if not measure else measure["method"] + LATENCY_NOTE,
        "pending_jobs": [job_id(*j) for j in jobs(args) if job_id(*j) not in {r["job"] for r in rows}],
        "rows": rows, "summary": summary, "robustness": measure.get("robustness", {}), "goals": goals,
        "wall_s": wall_s, "peak_rss_mb": max((r["peak_rss_mb"] for r in rows), default=None),
    }  # fmt: skip


def markdown(doc: dict[str, Any]) -> str:
    from benchmarks.common.results import method_lines

    def f(v: Any, nd: int = 4) -> str:
        return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))

    lines = [
        "# Golden-template inspection on DeepPCB: image alone vs image + template",
        "",
        f"Command: `{doc['command']}`  ",
        f"Git commit: `{doc['git_commit']}` (training commit of each row: `train_git_commit` in the JSON)  ",
        f"Data: {doc['dataset']}.  ",
        f"Recipe: {doc['recipe']}",
        "",
        *(
            [
                f"**In progress**: {len(doc['rows'])} of {len(doc['rows']) + len(doc['pending_jobs'])} training jobs "
                f"finished; still to run (they resume from the work folder): {', '.join(doc['pending_jobs'])}. Latency "
                "and the robustness rows are measured when all jobs are done.",
                "",
            ]
            if doc["pending_jobs"]
            else []
        ),
        "| row | input | seed | mAP50 | mAP50-95 | params (M) | latency 1t / 2t (ms) | train wall (s) | device |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        lat = f"{f(r['latency_ms_1t'], 1)} / {f(r['latency_ms_2t'], 1)}"
        lines.append(
            f"| {r['name']} | {r['input']} | {r['seed']} | {f(r['mAP50'])} | {f(r['mAP50_95'])} | "
            f"{r['params'] / 1e6:.2f} | {lat} | {f(r['train_wall_s'], 0)} | {r['device']} |"
        )
    if doc["robustness"]:
        dx, dy, deg = doc["robustness_perturbation"].values()
        head = "| row | aligned templates | moved, no registration | moved, ECC registration |"
        lines += ["", f"Robustness (mAP50): templates moved by ({dx}, {dy}) px and rotated {deg} degree", ""]
        lines += [head, "|---|---|---|---|"]
        for jid, rob in doc["robustness"].items():
            cells = " | ".join(f(rob[k]["mAP50"]) for k in ("aligned_templates", "moved_no_registration", "moved_ecc"))
            lines.append(f"| {jid} | {cells} |")
    lines += ["", "Goals:", ""] + [f"- {k}: {v}" for k, v in doc["goals"].items()]
    lines += [
        "",
        f"Wall time of this invocation: {f(doc['wall_s'], 0)} s; peak RSS of a job: {f(doc['peak_rss_mb'], 0)} MB.",
        "",
    ]
    return "\n".join(lines + method_lines(doc))


def write_report(args: argparse.Namespace, wall_s: float | None = None) -> None:
    from benchmarks.common.results import write_results

    doc = build_doc(args, wall_s)
    if doc["rows"]:
        write_results(NAME, doc, markdown, out_dir=work_dir(args) if args.smoke else None)


# --------------------------------------------------------------------------- orchestration
def _cmd(args: argparse.Namespace, extra: list[str]) -> list[str]:
    return module_cmd(f"benchmarks.{NAME}", "--epochs", str(args.epochs), "--imgsz", str(args.imgsz),
                      "--threads", str(args.threads), "--smoke", str(args.smoke), "--device", args.device,
                      "--seeds", *map(str, args.seeds), "--inputs", *args.inputs, *extra)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{NAME}", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=24)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--inputs", nargs="+", choices=INPUTS, default=list(INPUTS))
    p.add_argument("--threads", type=int, default=1, help="torch threads of every training job")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1, help="training jobs at once")
    p.add_argument("--launcher", default=default_launcher("cpu-slot"))
    p.add_argument("--measure-launcher", default=default_launcher("cpu-whole"))
    p.add_argument("--poll", type=float, default=20.0)
    p.add_argument("--smoke", type=int, default=0, help="dry run on the first N images of each split (own work dir)")
    p.add_argument("--job", default="", help=argparse.SUPPRESS)
    p.add_argument("--measure", action="store_true", help="only latency + robustness of finished rows (this process)")
    p.add_argument("--report", action="store_true", help="only re-aggregate finished jobs")
    args = p.parse_args(argv)
    args.seeds = tuple(args.seeds)
    args.argv = ["python", "-m", f"benchmarks.{NAME}", *(argv if argv is not None else sys.argv[1:])]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from kdinspect.utils.env import require_clean_tree

    if not args.smoke:
        require_clean_tree(REPO)  # results are written from a committed tree only
    if args.job:
        run_job(args, args.job)
        return 0
    if args.measure:
        run_measure(args)
        write_report(args)
        return 0
    if args.report:
        write_report(args)
        return 0
    t0 = time.time()
    wd = work_dir(args)
    runner = [
        Job(job_id(*j), _cmd(args, ["--job", job_id(*j)]), wd / job_id(*j), wd / job_id(*j) / "row.json",
            (job_id(j[0], "teacher", args.seeds[0]),) if j[1] == "student_kd" else ())
        for j in jobs(args)
    ]  # fmt: skip
    report = run_jobs(runner, log_dir=wd / "logs", workers=args.workers, launcher=args.launcher, poll=args.poll,
                      on_finish=lambda _job: write_report(args), tag="template-bench")  # fmt: skip
    log = wd / "logs" / "measure.log"
    cmd = [*shlex.split(args.measure_launcher), *_cmd(args, ["--measure"])]
    print(f"[template-bench] start: {shlex.join(cmd)}", flush=True)
    with log.open("a") as fh:
        rc = subprocess.run(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT).returncode
    write_report(args, wall_s=time.time() - t0)
    if report.failed:
        print(f"[template-bench] failed jobs: {list(report.failed)}; logs in {wd / 'logs'}", flush=True)
    return 1 if report.failed or rc else 0


if __name__ == "__main__":
    raise SystemExit(main())
