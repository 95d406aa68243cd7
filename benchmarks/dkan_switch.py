"""Paired comparison of two DKAN benchmark results that differ in one switch (one command).

    python -m benchmarks.dkan_switch --default dkan_neu-det --switched dkan_neu-det_lka_aligned \\
        --switch "distill.params.lka_mode: unaligned -> aligned" --name dkan_lka_switch

Reads ``benchmarks/results/<default>.json`` and ``<switched>.json`` (written by ``python -m benchmarks.dkan``), pairs
their DKAN rows by (split, K, seed), which share the base model and the K-shot set, and writes
``benchmarks/results/<name>.json`` and ``.md``: every pair, and the mean and median of switched - default for AP_B,
AP_N and AP_All. Rows carried over from an earlier run (``restored_from``) are left out, since they were fine-tuned
from another base model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from benchmarks.common import REPO
from benchmarks.common.results import provenance, results_dir, write_results
from kdinspect.utils.env import require_clean_tree

METRICS = ("ap_base", "ap_novel", "ap_all")


def _rows(doc: dict[str, Any], method: str) -> dict[tuple[int, int, int], dict[str, Any]]:
    return {
        (r["split"], r["shots"], r["seed"]): r
        for r in doc["rows"]
        if r.get("method") == method and not r.get("restored_from")
    }


def compare(default: dict[str, Any], switched: dict[str, Any], method: str = "dkan") -> dict[str, Any]:
    """Pairs of rows present in both documents, their differences (switched - default) and summary statistics.

    Raises:
        ValueError: the two documents share no (split, K, seed) row of ``method``.
    """
    a, b = _rows(default, method), _rows(switched, method)
    keys = sorted(a.keys() & b.keys())
    if not keys:
        raise ValueError(f"no {method} rows in common (default has {sorted(a)}, switched has {sorted(b)})")
    pairs = [
        {
            "split": s,
            "shots": k,
            "seed": seed,
            **{f"default_{m}": a[(s, k, seed)][m] for m in METRICS},
            **{f"switched_{m}": b[(s, k, seed)][m] for m in METRICS},
            **{f"d_{m}": b[(s, k, seed)][m] - a[(s, k, seed)][m] for m in METRICS},
            "default_wall_s": a[(s, k, seed)].get("wall_s"),
            "switched_wall_s": b[(s, k, seed)].get("wall_s"),
        }
        for s, k, seed in keys
    ]
    summary = {
        f"d_{m}_{stat}": fn([p[f"d_{m}"] for p in pairs])
        for m in METRICS
        for stat, fn in (("mean", statistics.fmean), ("median", statistics.median))
    }
    summary["switched_better_ap_all"] = sum(p["d_ap_all"] > 0 for p in pairs)
    return {"method": method, "n_pairs": len(pairs), "pairs": pairs, "summary": summary}


def _pairs(n: int) -> str:
    return f"{n} pair" + ("" if n == 1 else "s")


def _markdown(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    lines = [
        f"# DKAN switch, paired: {doc['switch']}",
        "",
        f"Command: `{doc['command']}`  ",
        f"Git commit: `{doc['git_commit']}`  ",
        f"Default: `benchmarks/results/{doc['default']}.json`; switched: `benchmarks/results/{doc['switched']}.json` "
        f"({_pairs(doc['n_pairs'])} of {doc['method']} rows with the same split, K, seed and base model)",
        "",
        "| split | K | seed | AP_B default / switched | AP_N default / switched | AP_All default / switched | "
        "d AP_All | wall s default / switched |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in doc["pairs"]:
        cells = [f"{p[f'default_{m}']:.4f} / {p[f'switched_{m}']:.4f}" for m in METRICS]
        walls = f"{p['default_wall_s'] or 0:.0f} / {p['switched_wall_s'] or 0:.0f}"
        key = f"| {p['split']} | {p['shots']} | {p['seed']} | "
        lines.append(key + " | ".join(cells) + f" | {p['d_ap_all']:+.4f} | {walls} |")
    lines += [
        "",
        "Switched - default over the pairs: "
        + "; ".join(
            f"{label} mean {s[f'd_{m}_mean']:+.4f}, median {s[f'd_{m}_median']:+.4f}"
            for m, label in zip(METRICS, ("AP_B", "AP_N", "AP_All"), strict=True)
        )
        + f". Switched ahead on AP_All in {s['switched_better_ap_all']} of {_pairs(doc['n_pairs'])}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.dkan_switch", description=__doc__.split("\n\n")[0])
    p.add_argument("--default", required=True, help="results stem of the run with the default setting")
    p.add_argument("--switched", required=True, help="results stem of the run with the switch flipped")
    p.add_argument("--switch", required=True, help="what was flipped, for the report")
    p.add_argument("--method", default="dkan")
    p.add_argument("--name", required=True, help="output stem under benchmarks/results/")
    args = p.parse_args(argv)
    require_clean_tree(REPO)  # results are written from a committed tree only
    res = results_dir(REPO)
    docs = {}
    for stem in (args.default, args.switched):
        path = res / f"{stem}.json"
        if not path.is_file():
            p.error(f"{path} not found; run python -m benchmarks.dkan for it first")
        docs[stem] = json.loads(path.read_text())
    try:
        doc = compare(docs[args.default], docs[args.switched], args.method)
    except ValueError as err:
        p.error(str(err))
    doc = {
        **provenance("benchmarks.dkan_switch", argv),
        "switch": args.switch,
        "default": args.default,
        "switched": args.switched,
        **doc,
    }
    write_results(args.name, doc, _markdown)
    print(_markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
