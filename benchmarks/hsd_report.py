"""Aggregate the HSD benchmark's finished rows (``python -m benchmarks.hsd``) into
``benchmarks/results/hsd_<dataset>.json`` and ``.md``."""

from __future__ import annotations

import json
import shlex
import statistics
from pathlib import Path
from typing import Any

from benchmarks.common import REPO
from benchmarks.common.measure import latency_method
from benchmarks.common.results import results_dir, write_results

# --switches (python -m benchmarks.hsd): the student without distillation with one switch flipped from its config (the
# released defaults), every seed, to choose the defaults by measurement; row name -> config overrides
SWITCH_ROWS = {
    "student_ca_laterals": ["model.params.ca_mode=apply_on_laterals"],
    "student_bce": ["model.params.cls_loss=bce"],
}
ROW_ORDER = (
    "teacher",
    "student",
    "student_hsd",
    "student_scratch",
    "student_ca_laterals",
    "student_bce",
    "yolo11n",
    "yolo11s",
    "yolo11n_distill",
)
ROW_LABEL = {
    "teacher": "1. HSD teacher",
    "student": "2. HSD student, no distillation",
    "student_hsd": "3. HSD student + HSD distillation",
    "student_scratch": "2b. HSD student, no ImageNet, no distillation",
    "student_ca_laterals": "2c. HSD student, no distillation, ca_mode apply_on_laterals",
    "student_bce": "2d. HSD student, no distillation, cls_loss bce",
    "yolo11n": "4. YOLO11n (from scratch)",
    "yolo11s": "(YOLO11s, teacher of row 5)",
    "yolo11n_distill": "5. YOLO11n + Ultralytics distillation",
}
RECIPE = (
    "kdinspect rows: SGD (momentum 0.9, weight decay 1e-4), lr 0.01, 300 linear warm-up iterations, cosine decay, "
    "batch 8, random horizontal flip, plain square resize; evaluated at score >= 0.05, NMS IoU 0.6, <= 100 boxes. "
    "Ultralytics rows: its default recipe for the model YAML (optimizer 'auto' = AdamW for short runs, mosaic / HSV / "
    "scale / translate augmentation, close_mosaic 10, nominal batch 64 via gradient accumulation), batch 8; evaluated "
    "at its validation settings (conf 0.001, NMS IoU 0.7, <= 300 boxes). All mAPs come from the same evaluator "
    "(kdinspect's faster-coco-eval COCO bbox evaluation) on the same test images, final (= last-epoch) weights."
)
GRAPHS_NOTE = (
    "`latency_ms_*` time the whole exported graph with in-graph NMS (ours: decode + top-1000 per level where a "
    "level has more anchors + batched NMS at score 0.05; Ultralytics export nms=True at its default conf 0.25); "
    "`raw` columns time the graph that ends at decoded boxes + class scores (no NMS) on both sides. Image decoding "
    "and resizing are not timed."
)
# the timer of the results written before benchmarks.common.measure (latency.json without a "method")
OLD_TIMER = (
    "Latency: ONNX Runtime CPUExecutionProvider, batch 1, median of 100 runs after 20 warm-up runs, inputs cycling "
    "through 50 real test images, intra-op threads 1 or 2 (inter-op 1), measured under tools/cpu-whole."
)
LATENCY_NOTE = f"{latency_method()} Measured under tools/cpu-whole. {GRAPHS_NOTE}"
OLD_TIMER_NOTE = "Latency timer of this file (before benchmarks.common.measure)"  # the line in the committed files


def latency_note(wd: Path) -> str:
    """How the latencies in ``wd/latency.json`` were timed: its recorded method, else the timer before
    ``benchmarks.common.measure`` (20 warm-up, 100 timed runs)."""
    path = wd / "latency.json"
    method = json.loads(path.read_text()).get("method") if path.exists() else None
    return f"{method or OLD_TIMER} {GRAPHS_NOTE}" if path.exists() else LATENCY_NOTE


def _load_rows(wd: Path) -> list[dict[str, Any]]:
    rows = [json.loads(p.read_text()) for p in sorted(wd.glob("*/row.json"))]
    latency = json.loads((wd / "latency.json").read_text()) if (wd / "latency.json").exists() else {"rows": {}}
    for r in rows:
        lat = latency["rows"].get(r["job"], {})
        for t in (1, 2):
            r[f"latency_ms_{t}t"] = lat.get(f"nms_{t}t", {}).get("median_ms")
            r[f"latency_raw_ms_{t}t"] = lat.get(f"raw_{t}t", {}).get("median_ms")
    return sorted(rows, key=lambda r: (ROW_ORDER.index(r["row"]), r["seed"]))


def _mean(rows: list[dict[str, Any]], row: str, key: str) -> tuple[float | None, float | None, int]:
    vals = [r[key] for r in rows if r["row"] == row and r.get(key) is not None]
    if not vals:
        return None, None, 0
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0), len(vals)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over seeds per row and the comparisons the issue asks for."""
    rows_present = [r for r in ROW_ORDER if any(x["row"] == r for x in rows)]
    means = {}
    for row in rows_present:
        means[row] = {}
        for key in ("mAP50", "mAP50_95", "latency_ms_1t", "latency_ms_2t", "latency_raw_ms_1t", "latency_raw_ms_2t",
                    "train_wall_s"):  # fmt: skip
            m, sd, n = _mean(rows, row, key)
            means[row][key] = m
            means[row][f"{key}_std"] = sd
            means[row]["n"] = max(means[row].get("n", 0), n)
    comp = {}
    hsd = means.get("student_hsd", {})
    for other in ("student", "yolo11n", "yolo11n_distill", "teacher"):
        o = means.get(other)
        if hsd.get("mAP50") is None or not o or o.get("mAP50") is None:
            continue
        comp[f"student_hsd_minus_{other}_mAP50"] = hsd["mAP50"] - o["mAP50"]
        comp[f"student_hsd_minus_{other}_mAP50_95"] = hsd["mAP50_95"] - o["mAP50_95"]
        for t in (1, 2):
            for kind in ("", "raw_"):
                a, b = hsd.get(f"latency_{kind}ms_{t}t"), o.get(f"latency_{kind}ms_{t}t")
                if a and b:
                    comp[f"latency_{kind}ratio_{t}t_student_hsd_over_{other}"] = a / b
    base = means.get("student", {})
    for switch in SWITCH_ROWS:  # each flipped switch against the config's default
        o = means.get(switch)
        if o and o.get("mAP50") is not None and base.get("mAP50") is not None:
            comp[f"{switch}_minus_student_mAP50"] = o["mAP50"] - base["mAP50"]
            comp[f"{switch}_minus_student_mAP50_95"] = o["mAP50_95"] - base["mAP50_95"]
    return {"means": means, "comparisons": comp}


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "pending"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    lines = [
        f"# HSD benchmark on {doc['dataset']}"
        + ("" if doc.get("variant", "paper") == "paper" else f" ({doc['variant']} student)"),
        "",
        f"Command: `{doc['command']}`  ",
        f"Git commit: `{doc['git_commit']}`  ",
        f"Training: {', '.join(sorted({r.get('train_device', 'this CPU') for r in doc['rows']})) or '-'}; torch "
        f"threads per training job: {doc['threads']}. Latency and this report: {env.get('cpu')} "
        f"({env.get('cpu_count')} cores). Wall time of the training invocation: {_fmt(doc.get('wall_s'), 0)} s.  ",
        f"Versions: {', '.join(f'{k} {v}' for k, v in env.get('packages', {}).items())}, python {env.get('python')}.",
        "",
        f"Recipe: {doc['epochs']} epochs, image size {doc['imgsz']} (square), seeds {doc['seeds']}. {RECIPE}",
        "",
        "| row | model | seed | init | mAP50 | mAP50-95 | params (M) | GFLOPs | latency 1t / 2t (ms) "
        "| raw 1t / 2t (ms) | train wall (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        lines.append(
            f"| {ROW_LABEL[r['row']]} | {r['model']} | {r['seed']} | {'ImageNet' if r['imagenet_init'] else 'scratch'} "
            f"| {_fmt(r['mAP50'])} | {_fmt(r['mAP50_95'])} | {r['params'] / 1e6:.2f} | {r['gflops']:.2f} "
            f"| {_fmt(r.get('latency_ms_1t'), 2)} / {_fmt(r.get('latency_ms_2t'), 2)} "
            f"| {_fmt(r.get('latency_raw_ms_1t'), 2)} / {_fmt(r.get('latency_raw_ms_2t'), 2)} "
            f"| {r['train_wall_s']:.0f} | {r['peak_rss_mb']:.0f} |"
        )
    head = "| row | n | mAP50 | mAP50-95 | latency 1t / 2t (ms) | raw 1t / 2t (ms) |"
    lines += ["", "Means over seeds (std):", "", head, "|---|---|---|---|---|---|"]
    for row, m in doc["summary"]["means"].items():
        lines.append(
            f"| {ROW_LABEL[row]} | {m['n']} | {_fmt(m['mAP50'])} ({_fmt(m['mAP50_std'])}) "
            f"| {_fmt(m['mAP50_95'])} ({_fmt(m['mAP50_95_std'])}) "
            f"| {_fmt(m['latency_ms_1t'], 2)} / {_fmt(m['latency_ms_2t'], 2)} "
            f"| {_fmt(m.get('latency_raw_ms_1t'), 2)} / {_fmt(m.get('latency_raw_ms_2t'), 2)} |"
        )
    if doc["summary"]["comparisons"]:
        lines += ["", "Comparisons (means over seeds):", ""]
        lines += [
            f"- {k}: {v:+.4f}" if "minus" in k else f"- {k}: {v:.3f}" for k, v in doc["summary"]["comparisons"].items()
        ]
    lines += ["", doc.get("latency_method") or LATENCY_NOTE, ""]
    if doc.get("notes"):
        lines += ["Notes:", "", *[f"- {n}" for n in doc["notes"]], ""]
    return "\n".join(lines)


def _kept_notes(notes: list[str], wd: Path) -> list[str]:
    """The earlier report's notes, less the ones that only held for it: the old timer's line once ``latency.json``
    comes from the shared timer, and the old command form (this report records ``python -m benchmarks.hsd``)."""
    path = wd / "latency.json"
    new_timer = path.exists() and bool(json.loads(path.read_text()).get("method"))
    return [
        n
        for n in notes
        if "is now `python -m benchmarks.hsd`" not in n and not (new_timer and n.startswith(OLD_TIMER_NOTE))
    ]


def write_report(args: Any, wd: Path, wall_s: float | None = None, notes: list[str] | None = None) -> dict[str, Any]:
    """Write ``benchmarks/results/hsd_<name>.json`` and ``.md`` from the finished rows under ``wd`` (name = the
    dataset, plus ``-lite`` for the lite student variant); a smoke run writes them into ``wd``."""
    from kdinspect.utils.env import environment_info

    out_dir = wd if getattr(args, "smoke", 0) else results_dir(REPO)  # dry runs stay in the work dir
    name = f"hsd_{getattr(args, 'name', args.dataset)}"
    old_path = out_dir / f"{name}.json"
    old = json.loads(old_path.read_text()) if old_path.exists() else {}
    rows = _load_rows(wd)
    doc = {
        "benchmark": "hsd",
        "dataset": args.dataset,
        "variant": getattr(args, "variant", "paper"),
        "command": shlex.join(getattr(args, "argv", ["python", "-m", "benchmarks.hsd", "--dataset", args.dataset])),
        "git_commit": None,  # filled in by write_results
        "environment": environment_info(),
        "threads": args.threads,
        "epochs": args.epochs,
        "imgsz": args.imgsz,
        "seeds": list(args.seeds),
        "wall_s": wall_s if wall_s is not None else old.get("wall_s"),
        "recipe": RECIPE,
        "latency_method": latency_note(wd),
        "notes": notes if notes is not None else _kept_notes(old.get("notes", []), wd),
        "rows": rows,
        "summary": summarize(rows),
    }
    write_results(name, doc, markdown, out_dir=out_dir)
    return doc
