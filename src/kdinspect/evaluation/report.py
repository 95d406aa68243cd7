"""Validation metrics as the console tables detection and segmentation users know (one row overall, one per class)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["metrics_table", "summary_table"]

_DET_COLS = ("class", "images", "instances", "P", "R", "mAP50", "mAP50-95")
_SEG_COLS = ("class", "images", "P", "R", "F1", "IoU", "ODS", "ODS thr")


def _cell(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _count(v: float | None) -> str:
    return "-" if v is None else str(round(v))


def _render(cols: Sequence[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(c), *(len(r[i]) for r in rows)) + 2 for i, c in enumerate(cols)]
    line = ["".join(c.rjust(w) for c, w in zip(cols, widths))]
    return line + ["".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows]


def metrics_table(metrics: dict[str, float], classes: Sequence[str], kind: str) -> list[str]:
    """Lines of a fixed-width table of ``metrics`` (as returned by the evaluators).

    Detection: images, instances, P, R (at the confidence with the best mean F1), mAP50 and mAP50-95, overall and
    per class with ground truth. Segmentation: P, R, F1 and IoU at the model's threshold, ODS and its threshold.
    """
    m = metrics.get
    if kind == "detection":
        rows = [["all", _count(m("images")), _count(m("instances")), _cell(m("precision")), _cell(m("recall")),
                 _cell(m("mAP50")), _cell(m("mAP"))]]  # fmt: skip
        for name in classes:
            if f"AP50_{name}" in metrics or f"instances_{name}" in metrics:
                rows.append(
                    [
                        name,
                        _count(m("images")),
                        _count(m(f"instances_{name}")),
                        _cell(m(f"P_{name}")),
                        _cell(m(f"R_{name}")),
                        _cell(m(f"AP50_{name}")),
                        _cell(m(f"AP_{name}")),
                    ]
                )
        return _render(_DET_COLS, rows)
    name = classes[0] if len(classes) == 1 else "defect"
    row = [name, _count(m("images")), _cell(m("precision")), _cell(m("recall")), _cell(m("f1")), _cell(m("iou")),
           _cell(m("ods")), _cell(m("ods_threshold"), 2)]  # fmt: skip
    return _render(_SEG_COLS, [row])


def summary_table(metrics: dict[str, float]) -> list[str]:
    """:func:`metrics_table` for a metrics dict alone (the kind and the class names are read from its keys)."""
    if "mAP50" in metrics:
        names = [k.split("_", 1)[1] for k in metrics if k.startswith("instances_")]
        names += [k.split("_", 1)[1] for k in metrics if k.startswith("AP50_") and k.split("_", 1)[1] not in names]
        return metrics_table(metrics, names, "detection")
    return metrics_table(metrics, ["defect"], "segmentation")
