"""Aggregate few-shot protocol rows (mean and std over seeds) and render them beside the paper's Table I."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from kdinspect.fewshot.paper import PAPER_TABLE_I, paper_row

__all__ = ["METRICS", "aggregate", "markdown_table", "summarize"]

METRICS = ("ap_base", "ap_novel", "ap_all", "coco_map")
_PAPER_NAME = {"dkan": "DKAN", "tfa": "TFA"}


def aggregate(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample std (ddof=1; 0 for a single seed) of each metric per (method, split, shots).

    Returns:
        One dict per group: ``method``, ``split``, ``shots``, ``n`` (seeds), ``seeds``, ``<metric>_mean``,
        ``<metric>_std``; sorted by shots, split, method.
    """
    groups: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("method") != "base":
            groups[(r["method"], int(r["split"]), int(r["shots"]))].append(r)
    out = []
    for (method, split, shots), rs in sorted(groups.items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][0])):
        agg: dict[str, Any] = {
            "method": method,
            "split": split,
            "shots": shots,
            "n": len(rs),
            "seeds": sorted(int(r["seed"]) for r in rs),
        }
        for m in METRICS:
            vals = np.array([float(r[m]) for r in rs if m in r], dtype=np.float64)
            agg[f"{m}_mean"] = float(vals.mean()) if vals.size else float("nan")
            agg[f"{m}_std"] = float(vals.std(ddof=1)) if vals.size > 1 else 0.0
        out.append(agg)
    return out


def summarize(rows: Sequence[dict[str, Any]], select: str = "last") -> dict[str, Any]:
    """The protocol's results document: rows, aggregates, base-model rows and the paper's Table I."""
    paper = [
        {"method": m, "shots": k, "split": s, **dict(zip(("ap_base", "ap_novel", "ap_all"), v))}
        for (m, k), by_split in PAPER_TABLE_I.items()
        for s, v in by_split.items()
    ]
    return {
        "checkpoint_selection": select,
        "rows": [r for r in rows if r.get("method") != "base"],
        "base": [r for r in rows if r.get("method") == "base"],
        "aggregates": aggregate(rows),
        "paper_table_i": paper,
    }


def _cell(agg: dict[str, Any] | None, metric: str, row_n: int = 0) -> str:
    """``mean ± std`` (or the single value), with ``(n=..)`` when this cell has fewer seeds than its row says."""
    if agg is None:
        return "-"
    mean, std = agg[f"{metric}_mean"], agg[f"{metric}_std"]
    text = f"{mean:.4f} ± {std:.4f}" if agg["n"] > 1 else f"{mean:.4f}"
    return f"{text} (n={agg['n']})" if agg["n"] < row_n else text


def markdown_table(aggregates: Sequence[dict[str, Any]], metric: str = "ap_all") -> str:
    """A table with one row per (shots, method) and one column per split: ours as mean ± std over seeds (a cell with
    fewer seeds than its row's label names its own count), followed by the paper's DKAN and TFA rows for the same
    metric (``ap_base``, ``ap_novel`` or ``ap_all``)."""
    by_key = {(a["method"], a["split"], a["shots"]): a for a in aggregates}
    splits = sorted({a["split"] for a in aggregates})
    methods = sorted({a["method"] for a in aggregates})
    shots = sorted({a["shots"] for a in aggregates})
    head = "| K | method | " + " | ".join(f"split {s}" for s in splits) + " |"
    lines = [head, "|" + "---|" * (2 + len(splits))]
    for k in shots:
        for m in methods:
            n = max((by_key[(m, s, k)]["n"] for s in splits if (m, s, k) in by_key), default=0)
            cells = [_cell(by_key.get((m, s, k)), metric, n) for s in splits]
            lines.append(f"| {k} | {m} (ours, {n} seed{'s' if n != 1 else ''}) | " + " | ".join(cells) + " |")
        for paper_method in ("DKAN", "TFA"):
            vals = [paper_row(paper_method, k, s) for s in splits]
            cells = [f"{v[metric]:.4f}" if v else "-" for v in vals]
            lines.append(f"| {k} | {paper_method} (paper) | " + " | ".join(cells) + " |")
    return "\n".join(lines)
