"""Render the README's Results section from the committed benchmark files (so README figures are the files' figures).

    python benchmarks/readme_tables.py            # print the section
    python benchmarks/readme_tables.py --write    # replace the block between the markers in README.md

Reads ``benchmarks/results/{hsd_neu-det,hsd_deeppcb,hsd_neu-det-lite,hsd_deeppcb-lite,mcff_deepcrack,mcff_crackforest,
dkan_neu-det,dkan_neu-det_gpu,deploy,deploy_hsd,deploy_mcff_lite,deploy_seg_peer,mcff_*_lite}.json``; a missing file
is reported as not run (the HSD DeepPCB and lite files, ``dkan_neu-det_gpu``, ``deploy_hsd``, ``deploy_mcff_lite``,
``deploy_seg_peer`` and the MCFF lite files are left out when missing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

RESULTS = REPO / "benchmarks" / "results"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _f(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _mean_of(rows: list[dict[str, Any]], row: str, key: str) -> float | None:
    vals = [r[key] for r in rows if r["row"] == row and r.get(key) is not None]
    return sum(vals) / len(vals) if vals else None


def hsd_section(doc: dict[str, Any] | None, dataset: str = "neu-det") -> list[str]:
    if doc is None:
        return [f"HSD: `benchmarks/results/hsd_{dataset}.json` not produced yet."]
    from hsd_report import ROW_LABEL

    rows = doc["rows"]
    devices = sorted({r.get("train_device", "?") for r in rows})
    title = {
        "neu-det": "NEU-DET",
        "deeppcb": "the DeepPCB subset",
        "neu-det-lite": "NEU-DET, lite student",
        "deeppcb-lite": "the DeepPCB subset, lite student",
    }.get(dataset, dataset)
    out = [
        f"**HSD on {title}** (`{doc['command']}`; {doc['epochs']} epochs, {doc['imgsz']} px, trained on "
        f"{'; '.join(devices)}; ONNX Runtime latency on {doc['environment'].get('cpu')}, batch 1, median, with NMS). "
        "Means over seeds (std):",
        "",
        "| row | seeds | mAP50 | mAP50-95 | params (M) | GFLOPs | latency 1 / 2 threads (ms) "
        "| no-NMS graph 1 / 2 (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row, m in doc["summary"]["means"].items():
        first = next(r for r in rows if r["row"] == row)
        raw = [_mean_of(rows, row, f"latency_raw_ms_{t}t") for t in (1, 2)]
        out.append(
            f"| {ROW_LABEL[row]} | {m['n']} | {_f(m['mAP50'])} ({_f(m['mAP50_std'])}) "
            f"| {_f(m['mAP50_95'])} ({_f(m['mAP50_95_std'])}) | {first['params'] / 1e6:.2f} | {first['gflops']:.2f} "
            f"| {_f(m['latency_ms_1t'], 2)} / {_f(m['latency_ms_2t'], 2)} | {_f(raw[0], 2)} / {_f(raw[1], 2)} |"
        )
    out += [
        "",
        f"Full table, recipe and notes: [benchmarks/results/hsd_{dataset}.md](benchmarks/results/hsd_{dataset}.md).",
    ]
    return out


def mcff_section(name: str, doc: dict[str, Any] | None, title: str = "") -> list[str]:
    if doc is None:
        return [f"MCFF-L: `benchmarks/results/{name}.json` not produced yet."]
    rows = doc["rows"]
    first = rows[0] if rows else {}
    out = [
        f"**{title or 'MCFF-L on ' + doc['dataset']}** ({first.get('epochs')} epochs, {first.get('imgsz')} px crops; "
        "F1/IoU at threshold 0.5, `tol` = +-2 px; latency: ONNX Runtime at 448x448, batch 1, median):",
        "",
        "| model | F1 | IoU | F1 tol | IoU tol | ODS | params (M) | GFLOPs | latency 1 / 2 threads (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['model']} | {_f(r.get('f1'))} | {_f(r.get('iou'))} | {_f(r.get('f1_tol'))} | {_f(r.get('iou_tol'))} "
            f"| {_f(r.get('ods'))} | {_f((r.get('params') or 0) / 1e6, 3)} | {_f(r.get('gflops'), 2)} "
            f"| {_f(r.get('latency_ms_1t'), 1)} / {_f(r.get('latency_ms_2t'), 1)} |"
        )
    out += ["", f"Full table, recipe and notes: [benchmarks/results/{name}.md](benchmarks/results/{name}.md)."]
    return out


def dkan_section(
    doc: dict[str, Any] | None, stem: str = "dkan_neu-det", title: str = "DKAN vs TFA on NEU-DET"
) -> list[str]:
    if doc is None:
        return [f"DKAN: `benchmarks/results/{stem}.json` not produced yet."]
    from kdinspect.fewshot import markdown_table

    return [
        f"**{title}** ({doc['setup']}; checkpoint: {doc['checkpoint_selection']}; "
        f"{doc['finished_jobs']} of {doc['total_jobs']} jobs finished). AP_All, VOC07 AP50, ours mean ± std over seeds "
        "beside the paper's Table I:",
        "",
        markdown_table(doc["aggregates"], "ap_all"),
        "",
        "AP_N (novel classes):",
        "",
        markdown_table(doc["aggregates"], "ap_novel"),
        "",
        f"Full tables (AP_B, base models, DKAN - TFA): [benchmarks/results/{stem}.md](benchmarks/results/{stem}.md).",
    ]


def deploy_section(
    doc: dict[str, Any] | None, stem: str = "deploy", title: str = "Deployment on this CPU"
) -> list[str]:
    if doc is None:
        return [f"Deployment: `benchmarks/results/{stem}.json` not produced yet."]
    peak = doc["cpu_peak"]
    out = [
        f"**{title}** (`{doc['command']}`; {doc['environment'].get('cpu')}, measured FP32 peak "
        f"{peak.get('measured_gflops_1t')} / {peak.get('measured_gflops_2t')} GFLOP/s at 1 / 2 threads). Batch-1 "
        "median latency in ms at 1 / 2 threads; end to end = decode, pre-processing, inference, NMS, drawing and JPEG "
        "per frame, 1 thread; YOLO11n runs through the same pipeline at the same input size:",
        "",
        "| model | input | GFLOPs | PyTorch eager | ONNX FP32 | fastest accurate runtime (1t) | its metric change "
        "| end to end ms (YOLO11n ms) | stream FPS | service p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in doc["summary"].items():
        m, b, e = doc["models"][name], s["backends"], s["e2e"]
        fast = m["fastest_runtime_1t"]
        lat = {k: f"{_f(b[k]['b1_ms_1t'], 1)} / {_f(b[k]['b1_ms_2t'], 1)}" for k in ("pytorch_eager", "onnx_fp32")}
        stream = m["stream"].get("every_frame_reliable", {}).get("sender", {})
        yolo = f" ({_f(e['yolo11n_ms_1t'], 1)})" if "yolo11n_ms_1t" in e else ""
        pipe = f" {e['ours_pipeline_1t']}" if "ours_pipeline_1t" in e else ""
        out.append(
            f"| {name}: {m['model']} | {m['input_size'][0]}x{m['input_size'][1]} | {m['gflops']:.2f} "
            f"| {lat['pytorch_eager']} | {lat['onnx_fp32']} | {fast} {_f(b[fast]['b1_ms_1t'], 1)} "
            f"| {s['metric']} {_f(b[fast]['metric_delta'], 4)} | {_f(e['ours_ms_1t'], 1)}{pipe}{yolo} "
            f"| {_f(stream.get('fps'), 1)} | {_f(m['service']['p50_ms'], 1)} / {_f(m['service']['p99_ms'], 1)} |"
        )
    if doc.get("failed_models"):
        out += ["", f"Failed in this run: {', '.join(doc['failed_models'])} (see the file)."]
    out += [
        "",
        "Every backend (INT8 QDQ / QOperator, OpenVINO f32 / bf16), batch-8 throughput, sizes and the share of the CPU "
        f"peak: [benchmarks/results/{stem}.md](benchmarks/results/{stem}.md).",
    ]
    return out


def seg_peer_section(doc: dict[str, Any]) -> list[str]:
    """One line per checkpoint and thread count: our segmenters' fastest runtime end to end beside YOLO11n-seg at the
    same input size."""
    peer = doc["yolo11n_seg"]
    h, w = doc["input_size"]
    lines = []
    for ours in doc["ours"]:
        for t in doc["threads"]:
            e2e = ours["e2e_per_frame"]
            runs = {k[: -len(f"_{t}t")]: v["median_ms"] for k, v in e2e.items() if k.endswith(f"_{t}t")}
            p = peer[f"e2e_same_pipeline_{t}t"]["median_ms"]
            best = min(runs, key=runs.get)
            lines.append(
                f"- `{ours['model']}` ({ours['gflops']} GFLOPs), {t} thread(s): {runs[best]:.1f} ms ({best}), "
                f"YOLO11n-seg {p:.1f} ms (ours / YOLO11n-seg = {runs[best] / p:.2f}x)"
            )
    return [
        f"**MCFF-L end to end vs YOLO11n-seg, {h}x{w}, in one run** (`{doc['command']}`; YOLO11n-seg "
        f"{peer.get('gflops', '?')} GFLOPs; decode, pre-processing, inference, masks, overlay and JPEG per frame, "
        "median; YOLO11n-seg random-init, same host steps):",
        "",
        *lines,
        "",
        "Ultralytics' own `predict` + `plot` of the same YOLO11n-seg: "
        f"{peer['e2e_ultralytics_predict_plot']['median_ms']:.1f} ms. Details: "
        "[benchmarks/results/deploy_seg_peer.md](benchmarks/results/deploy_seg_peer.md).",
    ]


def render() -> str:
    parts: list[str] = [BEGIN, ""]
    for lines in (
        hsd_section(_load("hsd_neu-det")),
        *([hsd_section(doc, "deeppcb")] if (doc := _load("hsd_deeppcb")) else []),
        *([hsd_section(doc, "neu-det-lite")] if (doc := _load("hsd_neu-det-lite")) else []),
        *([hsd_section(doc, "deeppcb-lite")] if (doc := _load("hsd_deeppcb-lite")) else []),
        mcff_section("mcff_deepcrack", _load("mcff_deepcrack")),
        mcff_section("mcff_crackforest", _load("mcff_crackforest")),
        *(
            mcff_section(f"mcff_{ds}_lite", doc, f"MCFF-L lite student and the peer U-Net on {ds}, trained on this CPU")
            for ds in ("deepcrack", "crackforest")
            if (doc := _load(f"mcff_{ds}_lite"))
        ),
        dkan_section(_load("dkan_neu-det")),
        *(
            [dkan_section(doc, "dkan_neu-det_gpu", "DKAN vs TFA on NEU-DET, the same config run on a GPU")]
            if (doc := _load("dkan_neu-det_gpu"))
            else []
        ),
        deploy_section(_load("deploy")),
        *(
            [deploy_section(doc, "deploy_hsd", "Deployment of the HSD students, paper vs lite, on this CPU")]
            if (doc := _load("deploy_hsd"))
            else []
        ),
        *(
            [deploy_section(doc, "deploy_mcff_lite", "Deployment of the MCFF-L lite student on this CPU")]
            if (doc := _load("deploy_mcff_lite"))
            else []
        ),
        *([seg_peer_section(doc)] if (doc := _load("deploy_seg_peer")) else []),
    ):
        parts += [*lines, ""]
    parts.append(END)
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true", help="replace the marked block in README.md")
    args = p.parse_args(argv)
    text = render()
    if not args.write:
        print(text)
        return 0
    readme = REPO / "README.md"
    src = readme.read_text()
    if BEGIN not in src or END not in src:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} block")
    head, rest = src.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + text + tail)
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
