"""``kdinspect fewshot``: the NEU-DET incremental few-shot protocol (base training per split, fine-tuning per K,
seed and method, mean/std table beside the DKAN paper's Table I)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kdinspect.cli.common import add_overrides

NAME = "fewshot"
HELP = "run the DKAN few-shot protocol on NEU-DET (base training, K-shot fine-tuning per seed, table vs the paper)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, help="protocol YAML (configs/dkan/*.yaml)")
    add_overrides(p)
    p.add_argument("--job", action="append", default=[], metavar="ID", help="run only this job (repeatable)")
    p.add_argument("--list", action="store_true", help="print the job ids and exit")
    p.add_argument("--report", action="store_true", help="only aggregate the finished jobs")
    p.add_argument("--metric", default="ap_all", choices=["ap_base", "ap_novel", "ap_all"], help="table metric")
    p.add_argument("--progress", action="store_true", help="progress bars")


def run(args: argparse.Namespace) -> int:
    from kdinspect.fewshot import load_protocol, markdown_table, protocol_jobs, run_protocol, summarize
    from kdinspect.fewshot.protocol import collect_results
    from kdinspect.utils.io import write_json

    pf = load_protocol(args.config, args.overrides)
    if args.list:
        print("\n".join(j.id for j in protocol_jobs(pf)))
        return 0
    if args.report:
        rows = collect_results(pf)
        write_json(Path(pf.protocol.out_dir) / "results.json", summarize(rows, pf.protocol.select))
    else:
        rows = run_protocol(pf, args.job or None, args.progress)
    summary = summarize(rows, pf.protocol.select)
    print(markdown_table(summary["aggregates"], args.metric))
    print(json.dumps({"finished_jobs": len(rows), "results": str(Path(pf.protocol.out_dir) / "results.json")}))
    return 0
