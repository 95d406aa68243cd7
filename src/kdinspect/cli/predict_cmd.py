"""``kdinspect predict``: run a checkpoint on images or folders."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from kdinspect.cli.common import add_device, add_overrides

NAME = "predict"
HELP = (
    "predict with a checkpoint (.safetensors) or an exported model (.onnx/.xml) on images, folders (or videos "
    "for exported models): JSON results, overlays, masks"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .safetensors checkpoint, or an exported .onnx / OpenVINO .xml")
    p.add_argument("source", help="image file, folder or glob pattern (exported models: also a video file)")
    p.add_argument("--out", default=None, help="output folder (default: <checkpoint folder>/predict)")
    p.add_argument(
        "--conf", type=float, default=None, help="detection score threshold (default 0.25, or the exported model's)"
    )
    p.add_argument("--threads", type=int, default=None, help="exported models: inference threads")
    p.add_argument("--video-stride", type=int, default=1, help="exported models: every N-th video frame")
    p.add_argument(
        "--mask-thr",
        type=float,
        default=None,
        help="segmentation probability threshold (default: the one stored with the model, chosen on its validation "
        "data at training time; 0.5 for models without one)",
    )
    p.add_argument("--no-overlays", action="store_true")
    p.add_argument(
        "--reference",
        default=None,
        metavar="FILE|DIR",
        help="reference-aware models (hsd_*_ref; docs/template.md): the defect-free reference, one image file for "
        "every image/frame, or a folder with one reference per image (same stem; DeepPCB X_test finds X_temp)",
    )
    p.add_argument(
        "--align",
        choices=["none", "ecc", "orb"],
        default=None,
        help="exported reference-aware models: register each reference onto its image (default: as exported)",
    )
    add_overrides(p)
    add_device(p)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(args.model).parent / "predict"
    if Path(args.model).suffix in (".onnx", ".xml"):
        from kdinspect.deploy.predict import predict_files

        if args.overrides:
            raise ValueError(
                f"--set applies to checkpoints; {args.model} is an exported model (its settings were fixed by "
                "`kdinspect export --set ...`)"
            )

        results = predict_files(
            args.model,
            args.source,
            out,
            args.conf,
            args.mask_thr,
            not args.no_overlays,
            args.threads,
            args.video_stride,
            args.reference,
            args.align,
        )
    else:
        from kdinspect.predictor import predict

        results = predict(
            args.model,
            args.source,
            out,
            0.25 if args.conf is None else args.conf,
            args.mask_thr,
            not args.no_overlays,
            args.device or "cpu",
            args.overrides,
            args.reference,
        )
    for line in console_lines(results):
        print(line)
    print(f"results: {out / 'results.json'}" + ("" if args.no_overlays else f", overlays: {out / 'overlays'}"))
    return 0


def _counts(dets: list[dict]) -> Counter:
    return Counter(d.get("class", str(d.get("label"))) for d in dets)


def console_lines(results: list[dict]) -> list[str]:
    """One line per image (what was found, and the pre-processing / inference / post-processing time) and a total."""
    lines, total, times, found, bad = [], Counter(), [], 0, 0
    for r in results:
        name = Path(r.get("image") or r.get("video", "?")).name + (f" #{r['frame']}" if "frame" in r else "")
        if "error" in r:
            bad += 1
            lines.append(f"{name}: not read ({r['error']})")
            continue
        if "detections" in r:
            c = _counts(r["detections"])
            total += c
            found += sum(c.values())
            what = ", ".join(f"{n} {k}" for k, n in sorted(c.items())) or "no detections"
        else:
            ratio = float(r.get("defect_ratio", 0.0))
            found += ratio > 0
            what = f"defect {100 * ratio:.2f} % of pixels" if ratio > 0 else "no defect pixels"
        ms = r.get("ms", {})
        if ms:
            times.append(ms)
            what += " (" + ", ".join(f"{ms[k]:.1f} ms {k}" for k in ("pre", "inference", "post")) + ")"
        lines.append(f"{name}: {what}")
    n = len(results) - bad
    if total:
        summary = f"{sum(total.values())} detections (" + ", ".join(f"{k} {v}" for k, v in sorted(total.items())) + ")"
    else:
        summary = f"defects in {found} image(s)" if not any("detections" in r for r in results) else "no detections"
    speed = ""
    if times:
        mean = {k: sum(t[k] for t in times) / len(times) for k in ("pre", "inference", "post")}
        speed = (
            f"; per image {mean['pre']:.1f} ms pre, {mean['inference']:.1f} ms inference, {mean['post']:.1f} ms post"
        )
    lines.append(f"{n} image(s): {summary}" + (f", {bad} not read" if bad else "") + speed)
    return lines
