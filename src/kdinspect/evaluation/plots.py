"""Matplotlib figures: training curves, PR curves, confusion matrices (Agg backend, PNG files)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_confusion_matrix", "plot_pr_curves", "plot_training_curves"]


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
