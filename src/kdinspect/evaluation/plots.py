"""Matplotlib figures: training curves, PR curves, confusion matrices (Agg backend, PNG files)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "plot_confidence_curves",
    "plot_confusion_matrix",
    "plot_pr_curves",
    "plot_results_grid",
    "plot_training_curves",
    "save_batch_preview",
]


def _read_csv(path: Path) -> dict[str, list[float]]:
    cols: dict[str, list[float]] = {}
    if not path.is_file():
        return cols
    with path.open() as fh:
        for row in csv.DictReader(fh):
            for k, v in row.items():
                try:
                    cols.setdefault(k, []).append(float(v))
                except (TypeError, ValueError):
                    cols.setdefault(k, []).append(float("nan"))
    return cols


def plot_training_curves(run_dir: str | Path) -> list[Path]:
    """Write ``loss.png`` (from steps.csv) and ``metrics.png`` (from metrics.csv); returns the files written."""
    run_dir = Path(run_dir)
    written = []
    steps = _read_csv(run_dir / "steps.csv")
    if steps.get("step"):
        keys = [k for k in steps if k not in ("step", "epoch", "lr", "time_s")]
        fig, ax = plt.subplots(figsize=(7, 4))
        for k in keys:
            ax.plot(steps["step"], steps[k], label=k, linewidth=1.2 if k == "loss" else 0.8)
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.set_yscale("log" if all(v > 0 for v in steps.get("loss", [1.0]) if v == v) else "linear")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(run_dir / "loss.png", dpi=110)
        plt.close(fig)
        written.append(run_dir / "loss.png")
    metrics = _read_csv(run_dir / "metrics.csv")
    if metrics.get("epoch"):
        keys = [k for k in metrics if k not in ("epoch", "step", "skipped_files") and not k.startswith("train_")]
        keys = [k for k in keys if all(0 <= v <= 1 for v in metrics[k] if v == v)][:8]
        if keys:
            fig, ax = plt.subplots(figsize=(7, 4))
            for k in keys:
                ax.plot(metrics["epoch"], metrics[k], marker="o", markersize=3, label=k)
            ax.set_xlabel("epoch")
            ax.set_ylabel("validation metric")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(run_dir / "metrics.png", dpi=110)
            plt.close(fig)
            written.append(run_dir / "metrics.png")
    return written


# the validation metrics shown in results.png, in order (those present in metrics.csv)
_GRID_METRICS = ("main", "precision", "recall", "mAP50", "mAP", "f1", "iou", "ods", "ois", "f1_tol", "iou_tol")


def plot_results_grid(run_dir: str | Path) -> Path | None:
    """``results.png``: one small panel per curve (each training loss term and the learning rate from steps.csv;
    each validation metric, and every class's AP50 or F1 in one panel, from metrics.csv). Points are marked, so a
    run with a single evaluation still shows its values."""
    run_dir = Path(run_dir)
    steps, metrics = _read_csv(run_dir / "steps.csv"), _read_csv(run_dir / "metrics.csv")
    panels: list[tuple[str, list[float], dict[str, list[float]]]] = []
    if steps.get("step"):
        for k in steps:
            if k not in ("step", "epoch", "time_s"):
                panels.append((f"train {k}", steps["step"], {k: steps[k]}))
    if metrics.get("epoch"):
        ep = metrics["epoch"]
        panels += [(f"val {k}", ep, {k: metrics[k]}) for k in _GRID_METRICS if k in metrics and k != "main"]
        per_class = {k.split("_", 1)[1]: v for k, v in metrics.items() if k.startswith("AP50_")}
        if per_class:
            panels.append(("val AP50 per class", ep, per_class))
    if not panels:
        return None
    cols = min(5, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.4 * rows), squeeze=False)
    for ax, (title, x, ys) in zip(axes.ravel(), panels):
        for name, y in ys.items():
            marker = "o" if len(x) <= 30 else None
            ax.plot(x, y, marker=marker, markersize=3, linewidth=1.0, label=name if len(ys) > 1 else None)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        ax.set_xlabel("iteration" if title.startswith("train") else "epoch", fontsize=7)
        ax.grid(alpha=0.3)
        if len(ys) > 1:
            ax.legend(fontsize=6)
        if title.startswith("val") and all(0 <= v <= 1 for y in ys.values() for v in y if v == v):
            ax.set_ylim(-0.02, 1.02)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    out = run_dir / "results.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_confidence_curves(
    conf: np.ndarray, curves: dict[str, np.ndarray], classes: Sequence[str], path: str | Path, ylabel: str
) -> Path:
    """A metric (precision, recall or F1) against the confidence threshold: one thin line per class and the mean over
    classes in bold, with the mean's maximum marked. curves: ``{class: (C,)}`` on the grid ``conf``."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name in classes:
        if name in curves:
            ax.plot(conf, curves[name], linewidth=0.9, label=name)
    if curves:
        mean = np.mean(list(curves.values()), axis=0)
        i = int(mean.argmax())
        ax.plot(conf, mean, color="black", linewidth=2.2, label=f"all classes {mean[i]:.3f} at {conf[i]:.2f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{ylabel}-confidence curve (IoU 0.5)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_pr_curves(
    recall: np.ndarray, precisions: dict[str, np.ndarray], aps: dict[str, float], path: str | Path, title: str = ""
) -> Path:
    """Precision-recall curves, one per class. recall: (R,); precisions[name]: (R,) (negative = undefined)."""
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, prec in precisions.items():
        valid = prec >= 0
        ax.plot(recall[valid], prec[valid], label=f"{name} AP={aps.get(name, float('nan')):.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_confusion_matrix(matrix: np.ndarray, names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Confusion matrix with counts; rows = ground truth, columns = prediction."""
    n = len(names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.8 + 0.7 * n))
    norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(int(matrix[i, j])),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def save_batch_preview(batch: Any, classes: Sequence[str], path: str | Path, cols: int = 4) -> Path:
    """A grid of a batch's images (float (3, H, W) in [0, 1]) with their boxes and class names, or their masks
    tinted, as the model receives them."""
    from kdinspect.deploy.draw import draw_detections, overlay_mask

    tiles = []
    for img, target in zip(batch.images, batch.targets):
        rgb = (img.permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)
        if hasattr(target, "boxes"):
            boxes = target.boxes.numpy()
            rgb = draw_detections(rgb, boxes, None, target.labels.numpy(), classes)
        else:
            rgb = overlay_mask(rgb, target.mask.numpy().astype(np.float32), 0.5)
        tiles.append(rgb)
    if not tiles:
        raise ValueError("the batch has no readable image")
    rows = (len(tiles) + cols - 1) // cols
    fig, axes = plt.subplots(rows, min(cols, len(tiles)), figsize=(3 * min(cols, len(tiles)), 3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, tile, meta in zip(axes.ravel(), tiles, batch.metas):
        ax.imshow(tile)
        ax.set_title(Path(meta.path).name, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
