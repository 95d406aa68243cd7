"""The end-to-end demo: synthetic data -> teacher -> student with and without distillation -> evaluation -> report.

The setting is one where a teacher knows something the student's labels lack: the teacher (U-Net width 16) trains on
completely annotated crack masks; the two students (width 4, 1/16 of the parameters) train on the same images with
incomplete masks that keep the cracks of only ``label_keep`` of the 8x8 tiles (an annotator who missed most of each
crack). One student learns from those masks alone, the other also from the teacher's pixel maps (``pixel_kd``). Each
model's threshold is chosen on the completely annotated validation images (their ODS threshold, stored with the
model, as every segmentation run does); all three are then evaluated on the same held-out test images.

Everything is generated locally (deterministic by seed), so the demo needs no download and no dataset.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from kdinspect.api import evaluate, train
from kdinspect.config import RunConfig, apply_overrides
from kdinspect.deploy.draw import overlay_mask
from kdinspect.deploy.runtime import stored_or_default
from kdinspect.engine.checkpoint import load_model
from kdinspect.engine.resume import ResumeConfigError
from kdinspect.engine.trainer import Callback, Trainer
from kdinspect.utils.env import environment_info
from kdinspect.utils.io import write_json

__all__ = ["run_demo"]

IMAGE_SIZE = (96, 128)
LATENCY_RUNS = 50
LATENCY_THREADS = 1
OVERLAYS = 3
TEST_IMAGES = 32  # held-out test images (complete masks) the report's metrics are measured on
TEST_SEED_OFFSET = 1000  # their generator seed: the run's seed + this (other images than train and validation)
KD_PARAMS = ["distill.method=pixel_kd", "distill.params.temperature=2.0", "distill.params.weight=5.0"]

# (row name, model overrides, complete labels?, distil from the teacher?)
_SEG_ROWS = [
    ("teacher U-Net w16", ["model.name=unet", "model.params.width=16", "model.params.depth=3"], True, False),
    ("student U-Net w4", ["model.name=unet", "model.params.width=4", "model.params.depth=3"], False, False),
    ("student U-Net w4 + KD", ["model.name=unet", "model.params.width=4", "model.params.depth=3"], False, True),
]


def _base(out: Path, epochs: int, threads: int, seed: int, label_keep: float | None) -> list[str]:
    data = "data-complete" if label_keep is None else f"data-keep{label_keep:g}"
    return [
        "task=segmentation",
        "data.format=synthetic-seg",
        f"data.root={out / data}",
        "data.params.n_train=48",
        "data.params.n_val=16",
        f"data.params.size=[{IMAGE_SIZE[0]},{IMAGE_SIZE[1]}]",
        *([] if label_keep is None else [f"data.params.label_keep={label_keep}"]),
        "data.imgsz=64",
        f"data.params.seed={seed}",
        f"train.epochs={epochs}",
        "train.batch_size=8",
        "train.optimizer=adamw",
        "train.lr=0.003",
        "train.weight_decay=0.0001",
        "train.scheduler=cosine",
        "train.eval_interval=0",
        f"train.threads={threads}",
        f"train.seed={seed}",
        f"train.out_dir={out}",
        "model.params.pos_weight=3.0",
    ]


class _EpochProgress(Callback):
    """One line per epoch: step, epoch, mean loss of the epoch, elapsed seconds."""

    def __init__(self, step: str, say: Callable[[str], None]) -> None:
        self.step, self.say = step, say
        self.t0 = time.perf_counter()
        self.losses: list[float] = []

    def on_step_end(self, trainer: Trainer, losses: dict[str, float]) -> None:
        self.losses.append(losses.get("loss", float("nan")))

    def on_epoch_end(self, trainer: Trainer) -> None:
        loss = statistics.fmean(self.losses) if self.losses else float("nan")
        self.losses.clear()
        elapsed = time.perf_counter() - self.t0
        self.say(f"  {self.step}: epoch {trainer.state.epoch}/{trainer.epochs}  loss {loss:.3f}  {elapsed:.0f} s")


def _latency_ms(model: torch.nn.Module, size: tuple[int, int]) -> dict[str, float]:
    """Median and 90th percentile of ``LATENCY_RUNS`` timed forwards (after 5 warm-up runs) on ``LATENCY_THREADS``."""
    x = torch.rand(1, 3, *size)
    before = torch.get_num_threads()
    torch.set_num_threads(LATENCY_THREADS)
    try:
        times = []
        with torch.no_grad():
            for i in range(LATENCY_RUNS + 5):
                t0 = time.perf_counter()
                model(x)
                if i >= 5:
                    times.append((time.perf_counter() - t0) * 1e3)
    finally:
        torch.set_num_threads(before)
    return {"median": statistics.median(times), "p90": float(np.percentile(times, 90))}


def _probability(model: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(image).copy()).permute(2, 0, 1).float().div(255.0)[None]
    with torch.no_grad():
        return model(x).prob[0, 0].numpy()


def _test_overrides(out: Path, seed: int) -> list[str]:
    """The held-out test set: the same generator with another seed (images no model saw, neither in training nor
    when its threshold was chosen on the validation split), complete masks."""
    return [
        f"data.root={out / 'data-test'}",
        f"data.params.seed={seed + TEST_SEED_OFFSET}",
        "data.params.n_train=1",
        f"data.params.n_val={TEST_IMAGES}",
        "data.params.label_keep=1.0",
    ]


def _write_overlays(
    out: Path, data_root: Path, models: dict[str, torch.nn.Module], thresholds: dict[str, float]
) -> list[Path]:
    """Per test image: the ground truth (green), then each model's pixels at or above its stored threshold (red)."""
    paths = []
    folder = out / "overlays"
    folder.mkdir(parents=True, exist_ok=True)
    for img_path in sorted((data_root / "images" / "val").glob("*.png"))[:OVERLAYS]:
        image = np.asarray(Image.open(img_path).convert("RGB"))
        mask = np.asarray(Image.open(data_root / "masks" / "val" / img_path.name)) > 0
        tiles = [overlay_mask(image, mask.astype(np.float32), color=(0, 200, 0))]
        tiles += [overlay_mask(image, _probability(m, image), thresholds[name]) for name, m in models.items()]
        gap = np.full((image.shape[0], 4, 3), 255, np.uint8)
        row = np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1)
        path = folder / img_path.name
        Image.fromarray(row).save(path)
        paths.append(path)
    (folder / "README.txt").write_text(
        "Each test image, left to right: ground truth (green), "
        + ", ".join(f"{name} (red: probability >= {thresholds[name]:.2f}, its stored threshold)" for name in models)
        + ".\n"
    )
    return paths


def _markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        f"| model | labels | params | threshold | F1 | IoU | F1 at 0.5 | ODS | CPU ms (median of {LATENCY_RUNS}, "
        f"{LATENCY_THREADS} thread) | train s |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [
        f"| {r['model']} | {r['labels']} | {r['params']:,} | {r['mask_thr']:.2f} | {r['f1']:.3f} | {r['iou']:.3f} | "
        f"{r['f1_at_0.5']:.3f} | {r['ods']:.3f} | {r['latency_ms']:.2f} | {r['train_wall_s']:.1f} |"
        for r in rows
    ]
    return "\n".join([head, *lines])


def run_demo(
    out: str | Path = "runs/demo",
    epochs: int = 30,
    threads: int = 0,
    seed: int = 0,
    label_keep: float = 0.1,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the demo into ``out`` and return its report (also written to ``report.json`` / ``report.md``).

    Args:
        out: output folder (data, runs, overlays, report).
        epochs: training epochs of each of the three models.
        threads: torch threads for training (0 = torch's default, all cores); latency is always timed on
            ``LATENCY_THREADS``.
        seed: data and training seed.
        label_keep: share of 8x8 tiles whose cracks the students' training masks keep.
        say: progress sink (default: print to stderr).
    """
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    out = Path(out)
    rows, models, thresholds, teacher_ckpt = [], {}, {}, None
    t_start = time.perf_counter()
    for i, (name, model_ovr, complete, distil) in enumerate(_SEG_ROWS):
        step = f"[{i + 1}/{len(_SEG_ROWS)}] {name}"
        base = _base(out, epochs, threads, seed, None if complete else label_keep)
        ovr = [*base, *model_ovr, f"train.name=seg_{i}_{name.split()[0]}{'_kd' if distil else ''}"]
        if distil:
            ovr += [f"distill.teacher={teacher_ckpt}", *KD_PARAMS]
        cfg: RunConfig = apply_overrides(RunConfig(), ovr)
        if (cfg.run_dir / "last.safetensors").exists():
            cfg = apply_overrides(cfg, ["train.resume=true"])
        labels = "complete" if complete else f"incomplete ({label_keep:.0%} of tiles)"
        say(f"{step}: training on {labels} masks, {epochs} epochs{' with the teacher' if distil else ''}")
        try:
            res = train(cfg, callbacks=[_EpochProgress(step, say)], progress=False)
        except ResumeConfigError as err:  # a finished step is reused only with the same settings
            raise ResumeConfigError(
                f"{out} holds a demo run with other settings ({err}); choose another --out or delete {out}"
            ) from err
        if i == 0:
            teacher_ckpt = res.best
        loaded = load_model(res.best)
        model, thr = loaded.model, stored_or_default(loaded.mask_thr)
        models[name], thresholds[name] = model, thr
        test = evaluate(res.best, _test_overrides(out, seed))
        say(
            f"{step}: threshold {thr:.2f} (validation ODS); test F1 {test['f1_thr']:.3f}, ODS {test['ods']:.3f}; "
            f"timing {LATENCY_RUNS} forwards"
        )
        latency = _latency_ms(model, IMAGE_SIZE)
        rows.append(
            {
                "model": name,
                "labels": labels,
                "params": sum(p.numel() for p in model.parameters()),
                "mask_thr": thr,
                "f1": test["f1_thr"],
                "iou": test["iou_thr"],
                "f1_at_0.5": test["f1"],
                "f1_tol": test["f1_tol"],
                "ods": test["ods"],
                "val_ods": res.metrics["ods"],
                "latency_ms": latency["median"],
                "latency_p90_ms": latency["p90"],
                "train_wall_s": res.wall_s,
                "checkpoint": str(res.best),
            }
        )
    say("writing prediction overlays")
    overlays = _write_overlays(out, out / "data-test", models, thresholds)
    plain, distilled = rows[1], rows[2]
    gain = {k: distilled[k] - plain[k] for k in ("f1", "iou", "f1_tol", "ods")}
    report = {
        "rows": rows,
        "kd_gain": gain,
        "epochs": epochs,
        "seed": seed,
        "label_keep": label_keep,
        "latency": {"runs": LATENCY_RUNS, "threads": LATENCY_THREADS, "input": list(IMAGE_SIZE), "statistic": "median"},
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "overlays": [str(p) for p in overlays],
        "wall_s": time.perf_counter() - t_start,
        "environment": environment_info(),
    }
    write_json(out / "report.json", report)
    table = _markdown(rows)
    summary = (
        f"Distillation: F1 at the stored threshold {plain['f1']:.3f} -> {distilled['f1']:.3f} ({gain['f1']:+.3f}), "
        f"ODS {plain['ods']:.3f} -> {distilled['ods']:.3f} ({gain['ods']:+.3f}) "
        "for the same student, same masks, same steps."
    )
    load = report["load_average_1min"]
    notes = (
        f"Students' masks keep the cracks of {label_keep:.0%} of the 8x8 tiles; the teacher's and the validation "
        "masks are complete. Each model's threshold is the ODS threshold of its validation images, stored with "
        f"it; F1, IoU, F1 at 0.5 and ODS are measured on {TEST_IMAGES} held-out test images (another seed). "
        f"Latency: {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} input, median of {LATENCY_RUNS} forwards on "
        f"{LATENCY_THREADS} torch thread"
        + (f", 1-min load average {load:.1f} when measured" if load is not None else "")
        + ". Overlays: "
        + str(out / "overlays")
    )
    (out / "report.md").write_text(
        f"# kdinspect demo (synthetic cracks, {epochs} epochs, seed {seed})\n\n{table}\n\n{summary}\n\n{notes}\n"
    )
    report["table"] = f"{table}\n\n{summary}\n{notes}"
    return report
