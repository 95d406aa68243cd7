"""Summary figures and the markdown report of ``python -m benchmarks.deploy``."""

from __future__ import annotations

from typing import Any

from benchmarks.common.results import method_lines

BACKENDS = ("pytorch_eager", "onnx_fp32", "onnx_int8_qdq", "onnx_int8_qoperator", "openvino_fp32", "openvino_bf16")


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Per model and backend: batch-1 latency, batch-8 throughput, GFLOP/s and share of the CPU peak; metric
    change; end-to-end per-frame time against YOLO11n at the same input size."""
    peak = result["cpu_peak"]
    out: dict[str, Any] = {}
    for name, m in result["models"].items():
        rows = {}
        for b in BACKENDS:
            if b not in m["latency"]:
                continue
            row: dict[str, Any] = {"size_mb": m["sizes_mb"].get(b)}
            for t in result["threads"]:
                lat = m["latency"][b][f"{t}t"]
                ms = lat["batch1"]["median_ms"]
                gfs = m["gflops"] / (ms / 1e3)
                row[f"b1_ms_{t}t"] = ms
                row[f"b8_img_s_{t}t"] = lat.get("batch8", {}).get("images_per_s")
                if "mode" in lat.get("batch8", {}):
                    row["b8_mode"] = lat["batch8"]["mode"]
                row[f"gflop_s_{t}t"] = round(gfs, 2)
                row[f"peak_frac_measured_{t}t"] = round(gfs / peak[f"measured_gflops_{t}t"], 4)
                if f"theoretical_gflops_{t}t" in peak:
                    row[f"peak_frac_theoretical_{t}t"] = round(gfs / peak[f"theoretical_gflops_{t}t"], 4)
            key = "pytorch" if b == "pytorch_eager" else b
            row["metric"] = m["metric"].get(key)
            row["metric_delta"] = m["metric"].get(f"delta_{key}", 0.0 if key == "pytorch" else None)
            rows[b] = row
        e2e = {}
        yolo = result["yolo11n"].get(str(m["input_size"][0])) if m["task"] == "detection" else None
        yolo = None if yolo and "error" in yolo else yolo
        for t in result["threads"]:
            best = min(
                (k for k, v in m["e2e_per_frame"].items() if k.endswith(f"_{t}t")),
                key=lambda k: m["e2e_per_frame"][k]["median_ms"],
            )
            ours = m["e2e_per_frame"][best]["median_ms"]
            e2e[f"ours_ms_{t}t"] = ours
            e2e[f"ours_pipeline_{t}t"] = best.removesuffix(f"_{t}t")
            if yolo:
                theirs = yolo[f"e2e_same_pipeline_{t}t"]["median_ms"]
                e2e[f"yolo11n_ms_{t}t"] = theirs
                e2e[f"speedup_vs_yolo11n_{t}t"] = round(theirs / ours, 3)
                if f"e2e_same_pipeline_int8_qdq_{t}t" in yolo:
                    e2e[f"yolo11n_int8_qdq_ms_{t}t"] = yolo[f"e2e_same_pipeline_int8_qdq_{t}t"]["median_ms"]
        if yolo:
            e2e["yolo11n_ultralytics_predict_ms"] = yolo["e2e_ultralytics_predict_plot"]["median_ms"]
        out[name] = {"metric": m["metric"]["metric"], "backends": rows, "e2e": e2e}
    return out


def markdown(result: dict[str, Any]) -> str:
    env, peak, threads = result["environment"], result["cpu_peak"], result["threads"]
    lines = [
        "# Deployment benchmark",
        "",
        f"Command: `{result['command']}`  ",
        f"Commit: `{result['git_commit']}`  ",
        f"CPU: {env['cpu']} ({env['cpu_count']} cores); threads measured: {threads}  ",
        f"Packages: {', '.join(f'{k} {v}' for k, v in env['packages'].items())}  ",
        f"Wall time {result['wall_s']} s, peak RSS {result['peak_rss_mb']} MB. {result['seeds']}.",
        "",
        "CPU peak (FP32): " + ", ".join(f"{k} {v}" for k, v in peak.items()),
        "",
        *method_lines(result),
    ]
    if result["missing_checkpoints"]:
        lines += [f"Not measured (checkpoint missing): {result['missing_checkpoints']}", ""]
    t_last = threads[-1]
    for name, s in result["summary"].items():
        m = result["models"][name]
        lines += [
            f"## {name}: {m['model']} ({m['task']}, input {m['input_size'][0]}x{m['input_size'][1]}, "
            f"{m['params']:,} params, {m['gflops']} GFLOPs)",
            "",
            f"Checkpoint `{m['checkpoint']}`; metric {s['metric']} on {m['metric']['images']} validation images.",
            "",
            "| backend | size MB | "
            + " | ".join(f"b1 ms {t}t" for t in threads)
            + f" | b8 img/s {t_last}t | GFLOP/s 1t | % measured peak 1t | {s['metric']} | change |",
            "|---|---|" + "---|" * len(threads) + "---|---|---|---|---|",
        ]
        for b, r in s["backends"].items():
            lines.append(
                f"| {b} | {_fmt(r['size_mb'], 3)} | "
                + " | ".join(_fmt(r[f"b1_ms_{t}t"]) for t in threads)
                + f" | {_fmt(r[f'b8_img_s_{t_last}t'], 1)} | {_fmt(r['gflop_s_1t'], 1)} | "
                f"{_fmt(100 * r['peak_frac_measured_1t'], 1)} | {_fmt(r['metric'], 4)} | "
                f"{_fmt(r['metric_delta'], 4)} |"
            )
        looped = sorted({r["b8_mode"] for r in s["backends"].values() if "b8_mode" in r})
        if looped:
            lines += ["", f"Batch-8 throughput of the exported graphs: {', '.join(looped)}."]
        e = s["e2e"]
        lines += [
            "",
            "End to end per frame (decode, pre-processing, inference, NMS, drawing, JPEG), median ms; ours = the "
            "fastest pipeline measured, named in brackets (`onnx_fp32_host_nms`: the graph without NMS and OpenCV NMS "
            "on the host at the display threshold, the YOLO11n pipeline's shape; otherwise in-graph NMS):",
            "",
        ]
        for t in threads:
            row = f"- {t} thread(s): ours {e[f'ours_ms_{t}t']} ({e.get(f'ours_pipeline_{t}t', 'fastest runtime')})"
            if f"yolo11n_ms_{t}t" in e:
                row += (
                    f", YOLO11n FP32 (same pipeline, same input size) {e[f'yolo11n_ms_{t}t']} "
                    f"(YOLO11n time / ours = {e[f'speedup_vs_yolo11n_{t}t']})"
                )
            if f"yolo11n_int8_qdq_ms_{t}t" in e:
                row += f", YOLO11n INT8 QDQ {e[f'yolo11n_int8_qdq_ms_{t}t']}"
            lines.append(row)
        if "yolo11n_ultralytics_predict_ms" in e:
            lines.append(
                f"- YOLO11n through Ultralytics' own `predict` + `plot` (its default threads): "
                f"{e['yolo11n_ultralytics_predict_ms']} ms"
            )
        sv = m["service"]
        lines.append("")
        for mode, st in m["stream"].items():
            rx, tx = st["receiver"] or {}, st["sender"]
            lines.append(
                f"Stream `{mode}` ({m['e2e_per_frame']['frames']}-frame video made from test images, "
                f"{m['fastest_runtime_1t']}, 1 thread, ZeroMQ over loopback): {tx['fps']} FPS processed, source "
                f"dropped {tx.get('source_dropped')}; capture->received latency p50 {rx.get('latency_ms_p50')} ms, "
                f"p99 {rx.get('latency_ms_p99')} ms; received {rx.get('received')}, dropped {rx.get('dropped')}.  "
            )
        lines += [
            f"Service ({sv['requests']} requests, concurrency {sv['concurrency']}, 2 inference threads, client on "
            f"the same machine): p50 {sv['p50_ms']} ms, p99 {sv['p99_ms']} ms, {sv['requests_per_s']} req/s, "
            f"errors {sv['errors']}.",
            "",
        ]
    return "\n".join(lines) + "\n"
