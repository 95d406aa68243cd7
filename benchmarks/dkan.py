"""DKAN vs TFA incremental few-shot benchmark on NEU-DET (one command).

    python -m benchmarks.dkan                                   # CPU protocol of configs/dkan/neu_cpu.yaml
    python -m benchmarks.dkan --workers 2 --launcher tools/cpu-slot
    python -m benchmarks.dkan --report-only                     # re-aggregate finished jobs

Every job (3 base trainings, then split x K x seed x method fine-tunings) runs as its own ``kdinspect fewshot --job``
process; up to ``--workers`` run at once, each optionally behind a launcher command (``tools/cpu-slot``: one CPU
slot per core), by the shared job runner (``benchmarks.common.jobs``); a split's fine-tunings wait for its base
training, and are reported skipped when it fails. Finished jobs leave ``result.json`` in their run folder, so an
interrupted benchmark resumes where it stopped. After every finished job the results are re-aggregated into
``benchmarks/results/<name>.json`` and ``.md`` (rows, mean/std over seeds, DKAN - TFA differences, the paper's
Table I, environment).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO
from benchmarks.common import jobs as runner
from benchmarks.common.results import write_results
from kdinspect.fewshot import load_protocol, markdown_table, protocol_jobs, summarize
from kdinspect.fewshot.protocol import Job, ProtocolFile, collect_results, job_dir
from kdinspect.utils.env import environment_info, require_clean_tree


def _ordered(pf: ProtocolFile) -> list[Job]:
    """Base trainings first; fine-tunings seed-major so that a full table (one seed) lands first."""
    jobs = protocol_jobs(pf)
    base = [j for j in jobs if j.method == "base"]
    rest = sorted((j for j in jobs if j.method != "base"), key=lambda j: (j.seed, j.shots, j.split, j.method))
    return base + rest


def runner_jobs(pf: ProtocolFile, args: argparse.Namespace) -> list[runner.Job]:
    """Every protocol job as a ``kdinspect fewshot --job ID`` process of the shared runner (done = its
    ``result.json``; a fine-tuning runs after its split's base training)."""
    sets = [a for item in args.overrides for a in ("--set", item)]
    out = []
    for job in _ordered(pf):
        cmd = runner.module_cmd("kdinspect", "fewshot", "-c", args.config, *sets, "--job", job.id)
        after = () if job.method == "base" else (Job("base", job.split).id,)
        out.append(runner.Job(job.id, cmd, job_dir(pf, job), job_dir(pf, job) / "result.json", after))
    return out


def run_all(pf: ProtocolFile, args: argparse.Namespace) -> list[str]:
    """Run every unfinished job with up to ``args.workers`` processes; return the ids of failed (or skipped) jobs."""
    report = runner.run_jobs(
        runner_jobs(pf, args),
        log_dir=Path(pf.protocol.out_dir) / "logs",
        workers=args.workers,
        launcher=args.launcher,
        poll=args.poll,
        on_finish=lambda _job: write_report(pf, args),
        tag="dkan-bench",
    )
    return list(report.failed)


def _dkan_vs_tfa(aggregates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {(a["method"], a["split"], a["shots"]): a for a in aggregates}
    out = []
    for (method, split, shots), a in sorted(by.items(), key=lambda kv: (kv[0][2], kv[0][1])):
        t = by.get(("tfa", split, shots))
        if method != "dkan" or t is None:
            continue
        out.append(
            {
                "split": split,
                "shots": shots,
                "d_ap_all": a["ap_all_mean"] - t["ap_all_mean"],
                "d_ap_novel": a["ap_novel_mean"] - t["ap_novel_mean"],
                "d_ap_base": a["ap_base_mean"] - t["ap_base_mean"],
            }
        )
    return out


def _job_environments(pf: ProtocolFile, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct machines the finished jobs ran on (from each run folder's ``env.json``), with job counts.

    A report re-aggregated elsewhere (``--report-only`` on another machine) still names where the numbers came from."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        path = job_dir(pf, Job.parse(r["job"])) / "env.json" if "job" in r else None
        if path is None or r.get("restored_from") or not path.is_file():
            continue
        env = json.loads(path.read_text())
        pk = env.get("packages", {})
        entry = {
            "cpu": env.get("cpu", "?"),
            "cpu_count": env.get("cpu_count"),
            "devices": env.get("devices", ["cpu"]),
            "torch": pk.get("torch", "?"),
            "torchvision": pk.get("torchvision", "?"),
            "python": env.get("python", "?"),
        }
        key = tuple(json.dumps(v) for v in entry.values())
        groups.setdefault(key, entry | {"jobs": 0})["jobs"] += 1
    return sorted(groups.values(), key=lambda e: -e["jobs"])


def _markdown(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    ran_on = [
        f"Jobs ran on: {e['cpu']}{f' x{n}' if (n := e['cpu_count']) else ''} ({', '.join(e['devices'])}), "
        f"torch {e['torch']}, torchvision {e['torchvision']}, python {e['python']}: {e['jobs']} jobs  "
        for e in doc.get("job_environments", [])
    ]
    base_rows = "\n".join(
        f"| {r['split']} | {r['ap_base']:.4f} | {r['coco_map']:.4f} | {r['train_s']:.0f} |"
        for r in sorted(doc["base"], key=lambda r: r["split"])
    )
    diffs = "\n".join(
        f"| {d['shots']} | {d['split']} | {d['d_ap_all']:+.4f} | {d['d_ap_novel']:+.4f} | {d['d_ap_base']:+.4f} |"
        for d in doc["dkan_minus_tfa"]
    )
    restored = sorted(r["job"] for r in [*doc["rows"], *doc["base"]] if r.get("restored_from"))
    restored_line = (
        [f"Rows carried over from an earlier run of the same config ({len(restored)}): {', '.join(restored)}  "]
        if restored
        else []
    )
    parts = [
        "# DKAN vs TFA on NEU-DET (incremental few-shot, CPU-feasible protocol)",
        "",
        f"Command: `{doc['command']}`  ",
        f"Git commit: `{doc['git_commit']}`  ",
        f"Hardware (where this report ran): {env.get('cpu', '?')} ({', '.join(env.get('devices', ['cpu']))}), "
        f"{doc['threads_per_job']} torch thread per job, {doc['workers']} jobs in "
        f"parallel  ",
        f"Versions: torch {env.get('packages', {}).get('torch', '?')}, "
        f"torchvision {env.get('packages', {}).get('torchvision', '?')}, python {env.get('python', '?')}  ",
        *ran_on,
        f"Setup: {doc['setup']}  ",
        f"Checkpoint selection: {doc['checkpoint_selection']}; seeds {doc['seeds']}; "
        f"jobs finished {doc['finished_jobs']} of {doc['total_jobs']}  ",
        f"Wall time (sum over finished jobs): {doc['job_wall_s_total'] / 3600:.2f} h; "
        f"benchmark wall: {doc['bench_wall_s'] / 3600:.2f} h; peak RSS per job: {doc['peak_rss_mb']:.0f} MB  ",
        *restored_line,
        "",
        "## AP_All (VOC07 AP50, all 6 classes): ours mean ± std over seeds, and the paper's Table I",
        "",
        markdown_table(doc["aggregates"], "ap_all"),
        "",
        "## AP_N (novel classes)",
        "",
        markdown_table(doc["aggregates"], "ap_novel"),
        "",
        "## AP_B (base classes)",
        "",
        markdown_table(doc["aggregates"], "ap_base"),
        "",
        "## DKAN - TFA (ours, difference of the means)",
        "",
        "| K | split | AP_All | AP_N | AP_B |",
        "|---|---|---|---|---|",
        diffs,
        "",
        "## Base models (stage I, base classes only, last checkpoint)",
        "",
        "| split | AP_B (VOC07 AP50) | COCO mAP | train s |",
        "|---|---|---|---|",
        base_rows,
        "",
    ]
    return "\n".join(parts)


def write_report(pf: ProtocolFile, args: argparse.Namespace) -> dict[str, Any]:
    rows = collect_results(pf)
    doc = summarize(rows, pf.protocol.select)
    ft = [r for r in rows if r.get("method") != "base"]
    doc |= {
        "command": args.command_line,
        "git_commit": None,  # filled in by write_results
        "environment": environment_info(),
        "job_environments": _job_environments(pf, rows),
        "workers": args.workers,
        "threads_per_job": pf.base.train.threads,
        "seeds": pf.protocol.seeds,
        "setup": args.setup,
        "protocol": json.loads(json.dumps(pf.protocol.__dict__)),
        "base_config": pf.base.to_dict(),
        "finetune_config": pf.finetune.to_dict(),
        "finished_jobs": len(rows),
        "total_jobs": len(protocol_jobs(pf)),
        "job_wall_s_total": sum(float(r.get("wall_s", 0.0)) for r in rows),
        "bench_wall_s": time.perf_counter() - args.t0 + args.previous_wall,
        "peak_rss_mb": max((float(r.get("peak_rss_mb", 0.0)) for r in rows), default=0.0),
        "dkan_minus_tfa": _dkan_vs_tfa(doc["aggregates"]),
        "n_finetune_rows": len(ft),
    }
    write_results(args.name, doc, _markdown)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.dkan", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", default="configs/dkan/neu_cpu.yaml", help="protocol YAML (relative to the repo)")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="protocol override (repeatable)")
    p.add_argument("--workers", type=int, default=2, help="jobs in parallel")
    p.add_argument("--launcher", default="", help="command prefix per job, e.g. tools/cpu-slot")
    p.add_argument("--name", default="dkan_neu-det", help="results file stem under benchmarks/results/")
    p.add_argument(
        "--setup",
        default="MobileNetV2-FPN (ImageNet init), 320x320 inputs, 1 torch thread per job",
        help="one line describing the backbone/image size for the report",
    )
    p.add_argument("--poll", type=float, default=10.0, help="seconds between job status checks")
    p.add_argument("--report-only", action="store_true", help="only aggregate finished jobs")
    args = p.parse_args(argv)
    require_clean_tree(REPO)  # results are written from a committed tree only
    args.t0 = time.perf_counter()
    args.command_line = "python -m benchmarks.dkan " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    os.chdir(REPO)
    pf = load_protocol(args.config, args.overrides)
    prev = REPO / "benchmarks" / "results" / f"{args.name}.json"
    args.previous_wall = json.loads(prev.read_text()).get("bench_wall_s", 0.0) if prev.exists() else 0.0
    failed = [] if args.report_only else run_all(pf, args)
    doc = write_report(pf, args)
    print(markdown_table(doc["aggregates"], "ap_all"))
    if failed:
        print(f"[dkan-bench] failed jobs: {failed}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
