"""The end-to-end demo: synthetic data -> teacher -> student with and without distillation -> evaluation -> report.

Everything is generated locally (deterministic by seed), so the demo needs no download and no dataset.
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from kdinspect.api import train
from kdinspect.config import RunConfig, apply_overrides
from kdinspect.engine.checkpoint import load_model
from kdinspect.engine.resume import ResumeConfigError
from kdinspect.utils.env import environment_info
from kdinspect.utils.io import write_json

__all__ = ["run_demo"]

logger = logging.getLogger(__name__)

# (row name, model overrides, distil from the teacher?)
_SEG_ROWS = [
    ("teacher U-Net w16", ["model.name=unet", "model.params.width=16", "model.params.depth=3"], False),
    ("student U-Net w4", ["model.name=unet", "model.params.width=4", "model.params.depth=3"], False),
    ("student U-Net w4 + KD", ["model.name=unet", "model.params.width=4", "model.params.depth=3"], True),
]


def _base(out: Path, epochs: int, threads: int, seed: int) -> list[str]:
    return [
        "task=segmentation",
        "data.format=synthetic-seg",
        f"data.root={out / 'data'}",
        "data.params.n_train=48",
        "data.params.n_val=16",
        "data.params.size=[96,128]",
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


def _latency_ms(ckpt: Path, size: tuple[int, int], runs: int = 20) -> float:
    model = load_model(ckpt).model
    x = torch.rand(1, 3, *size)
    times = []
    with torch.no_grad():
        for i in range(runs + 3):
            t0 = time.perf_counter()
            model(x)
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| model | params | F1 | IoU | F1 (+-2 px) | ODS | CPU latency ms | train s |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    lines = [
        f"| {r['model']} | {r['params']:,} | {r['f1']:.3f} | {r['iou']:.3f} | {r['f1_tol']:.3f} | {r['ods']:.3f} | "
        f"{r['latency_ms']:.2f} | {r['train_wall_s']:.1f} |"
        for r in rows
    ]
    return "\n".join([head, *lines])


def run_demo(out: str | Path = "runs/demo", epochs: int = 12, threads: int = 0, seed: int = 0) -> dict[str, Any]:
    """Run the demo into ``out`` and return its report (also written to ``report.json`` / ``report.md``)."""
    out = Path(out)
    base = _base(out, epochs, threads, seed)
    rows, teacher_ckpt = [], None
    for i, (name, model_ovr, distil) in enumerate(_SEG_ROWS):
        ovr = [*base, *model_ovr, f"train.name=seg_{i}_{name.split()[0]}{'_kd' if distil else ''}"]
        if distil:
            ovr += [f"distill.teacher={teacher_ckpt}", "distill.method=pixel_kd", "distill.params.temperature=2.0"]
        cfg: RunConfig = apply_overrides(RunConfig(), ovr)
        if (cfg.run_dir / "last.safetensors").exists():
            cfg = apply_overrides(cfg, ["train.resume=true"])
        logger.info("demo step %d/%d: %s", i + 1, len(_SEG_ROWS), name)
        try:
            res = train(cfg, progress=False)
        except ResumeConfigError as err:  # a finished step is reused only with the same settings
            raise ResumeConfigError(
                f"{out} holds a demo run with other settings ({err}); choose another --out or delete {out}"
            ) from err
        if i == 0:
            teacher_ckpt = res.best
        model = load_model(res.best).model
        rows.append(
            {
                "model": name,
                "params": sum(p.numel() for p in model.parameters()),
                "f1": res.metrics["f1"],
                "iou": res.metrics["iou"],
                "f1_tol": res.metrics["f1_tol"],
                "ods": res.metrics["ods"],
                "latency_ms": _latency_ms(res.best, (96, 128)),
                "train_wall_s": res.wall_s,
                "checkpoint": str(res.best),
            }
        )
    report = {"rows": rows, "epochs": epochs, "seed": seed, "environment": environment_info()}
    write_json(out / "report.json", report)
    table = _markdown(rows)
    (out / "report.md").write_text(f"# kdinspect demo (synthetic cracks, {epochs} epochs, seed {seed})\n\n{table}\n")
    report["table"] = table
    return report
