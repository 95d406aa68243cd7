"""Ultralytics YOLO side of the HSD benchmark (rows "YOLO11n from scratch" and "YOLO11n + built-in distillation").

Runs Ultralytics fully offline from its model YAMLs (peers.md section B): ``YOLO_OFFLINE=1``,
``YOLO_AUTOINSTALL=False``, a private ``YOLO_CONFIG_DIR``, no ``.pt`` names (nothing is downloaded), and
``torch`` intra-op threads pinned to the same count as our rows (Ultralytics' own CPU default is ``cpu_count - 1``).

    python -m benchmarks.hsd_yolo train --data D.yaml --model yolo11n.yaml --epochs 12 --imgsz 224 --seed 0 \
        --out benchmarks/work/hsd/neu-det/yolo11n_s0 [--distill teacher.pt] [--threads 1]

Predictions for the COCO evaluation and the ONNX export are library functions used by ``python -m benchmarks.hsd``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

YOLO_ENV = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False", "YOLO_VERBOSE": "False"}


def offline_env(config_dir: Path) -> None:
    """Set the offline environment before ``ultralytics`` is imported."""
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(YOLO_ENV | {"YOLO_CONFIG_DIR": str(config_dir)})


def convert_dataset(records_by_split: dict[str, list[Any]], classes: list[str], out: Path) -> Path:
    """Write a YOLO-format copy (image symlinks + normalised label files) and its data YAML; return the YAML path.

    Args:
        records_by_split: ``{"train": [DetRecord, ...], "val": [...]}`` from a kdinspect reader.
        classes: class names in label order.
        out: output folder (under ``benchmarks/work``, git-ignored).
    """
    import yaml
    from PIL import Image

    for split, records in records_by_split.items():
        img_dir, lab_dir = out / "images" / split, out / "labels" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lab_dir.mkdir(parents=True, exist_ok=True)
        for rec in records:
            link = img_dir / f"{rec.image_id}{Path(rec.image).suffix.lower()}"
            if not link.exists():
                link.symlink_to(Path(rec.image).resolve())
            w, h = rec.width, rec.height
            if not (w and h):
                with Image.open(rec.image) as im:
                    w, h = im.size
            lines = []
            for (x1, y1, x2, y2), label in zip(rec.boxes.tolist(), rec.labels.tolist()):
                cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
                lines.append(f"{int(label)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
            (lab_dir / f"{rec.image_id}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    data_yaml = out / "data.yaml"
    data_yaml.write_text(
        yaml.safe_dump(
            {
                "path": str(out.resolve()),
                "train": "images/train",
                "val": "images/val",
                "names": dict(enumerate(classes)),
            }
        )
    )
    return data_yaml


def _read_results_csv_stdlib(self: Any) -> dict[str, list[Any]]:
    """``BaseTrainer.read_results_csv`` without polars (the GPU machine has no polars; same dict of columns)."""
    import csv

    try:
        with open(self.csv, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        return {}
    out: dict[str, list[Any]] = {k.strip(): [] for k in (rows[0] if rows else {})}
    for row in rows:
        for k, v in row.items():
            try:
                out[k.strip()].append(float(v))
            except (TypeError, ValueError):
                out[k.strip()].append(v)
    return out


def _device(device: str) -> str:
    """Ultralytics' device string: ``cuda``/``cuda:N`` -> ``N``."""
    return device.split(":")[1] if device.startswith("cuda:") else ("0" if device == "cuda" else device)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train one YOLO model from its YAML (optionally with ``distill_model=``); write ``result.json`` in ``--out``."""
    out = Path(args.out).resolve()
    offline_env(out.parent / "yolo_config")
    import torch
    import ultralytics.utils.torch_utils as tu
    from ultralytics import YOLO

    try:
        import polars  # noqa: F401
    except ImportError:
        from ultralytics.engine.trainer import BaseTrainer

        BaseTrainer.read_results_csv = _read_results_csv_stdlib

    tu.NUM_THREADS = args.threads  # Ultralytics resets torch threads to this in select_device()
    torch.set_num_threads(args.threads)
    extra = {"distill_model": args.distill} if args.distill else {}
    t0 = time.perf_counter()
    model = YOLO(args.model)
    model.train(
        data=args.data,
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        device=_device(getattr(args, "device", "cpu")),
        workers=getattr(args, "workers", 0),
        seed=args.seed,
        deterministic=True,
        project=str(out.parent),
        name=out.name,
        exist_ok=True,
        plots=False,
        amp=False,
        val=False,
        verbose=False,
        **extra,
    )
    wall = time.perf_counter() - t0
    result = {
        "model": args.model,
        "distill_model": args.distill or None,
        "epochs": args.epochs,
        "imgsz": args.imgsz,
        "batch": args.batch,
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "device": getattr(args, "device", "cpu"),
        "train_wall_s": wall,
        "weights": str(out / "weights" / "last.pt"),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def predict(weights: Path, images: list[Path], imgsz: int, threads: int = 1, device: str = "cpu") -> list[Any]:
    """YOLO predictions in original pixels with Ultralytics' validation settings (conf 0.001, IoU 0.7, 300 dets)."""
    import torch
    from ultralytics import YOLO

    from kdinspect.data.structures import Detections

    torch.set_num_threads(threads)
    model = YOLO(str(weights))
    dets = []
    for i in range(0, len(images), 16):
        for r in model.predict(
            [str(p) for p in images[i : i + 16]],
            imgsz=imgsz,
            conf=0.001,
            iou=0.7,
            max_det=300,
            device=_device(device),
            verbose=False,
        ):
            b = r.boxes
            dets.append(Detections(b.xyxy.float().cpu(), b.conf.float().cpu(), b.cls.long().cpu()))
    return dets


def export_onnx(weights: Path, imgsz: int, nms: bool, out: Path) -> Path:
    """Export to ONNX (opset 17, batch 1, static, unsimplified); ``nms=False`` keeps decoded boxes + class scores."""
    import shutil

    from ultralytics import YOLO

    path = Path(
        YOLO(str(weights)).export(
            format="onnx",
            imgsz=imgsz,
            opset=17,
            simplify=False,
            dynamic=False,
            nms=nms,
            batch=1,
            device="cpu",
            verbose=False,
        )
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.hsd_yolo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--model", required=True, help="model YAML, e.g. yolo11n.yaml (never a .pt name)")
    t.add_argument("--epochs", type=int, required=True)
    t.add_argument("--imgsz", type=int, required=True)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    t.add_argument("--workers", type=int, default=0, help="data-loading worker processes")
    t.add_argument("--distill", default="", help="teacher .pt for Ultralytics' distill_model=")
    t.add_argument("--out", required=True, help="run folder")
    args = p.parse_args(argv)
    if not args.model.endswith((".yaml", ".yml")):
        raise SystemExit(f"--model must be a model YAML (offline), got {args.model!r}")
    print(json.dumps(train(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
