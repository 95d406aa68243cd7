"""Procedural drawing of the synthetic defect images (steel surfaces with four defect classes; pavement cracks).

Pure numpy / OpenCV functions of a ``numpy.random.Generator``; :mod:`kdinspect.data.synthetic` writes their output in
the on-disk formats of real datasets.
"""

from __future__ import annotations

import cv2
import numpy as np

SYNTHETIC_DET_CLASSES = ["scratch", "spot", "inclusion", "patch"]


def _steel_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.uniform(105, 150)
    drift = cv2.resize(rng.normal(0, 7, (4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    streaks = cv2.GaussianBlur(rng.normal(0, 6, (h, 1)).astype(np.float32), (1, 3), 0)
    grain = rng.normal(0, 4, (h, w)).astype(np.float32)
    return base + drift + streaks + grain


def _draw_defect(cls: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Additive float layer (H, W) holding one defect of class ``cls`` (0 outside the defect)."""
    layer = np.zeros((h, w), np.float32)
    s = min(h, w)
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    if cls == "scratch":
        length, ang = rng.uniform(0.3, 0.6) * s, rng.uniform(0, np.pi)
        dx, dy = np.cos(ang) * length / 2, np.sin(ang) * length / 2
        delta = rng.choice([-1.0, 1.0]) * rng.uniform(55, 80)
        p1, p2 = (round(cx - dx), round(cy - dy)), (round(cx + dx), round(cy + dy))
        cv2.line(layer, p1, p2, float(delta), int(rng.integers(1, 3)), cv2.LINE_8)
    elif cls == "spot":
        for _ in range(int(rng.integers(1, 5))):
            c = (round(cx + rng.normal(0, s * 0.04)), round(cy + rng.normal(0, s * 0.04)))
            cv2.circle(layer, c, int(rng.integers(2, max(3, s // 24))), float(-rng.uniform(60, 85)), -1)
    elif cls == "inclusion":
        axes = (round(rng.uniform(0.08, 0.2) * s), int(rng.integers(1, 4)))
        cv2.ellipse(
            layer, (round(cx), round(cy)), axes, float(rng.uniform(-10, 10)), 0, 360, float(-rng.uniform(55, 75)), -1
        )
    elif cls == "patch":
        axes = (round(rng.uniform(0.1, 0.22) * s), round(rng.uniform(0.08, 0.18) * s))
        cv2.ellipse(
            layer,
            (round(cx), round(cy)),
            axes,
            float(rng.uniform(0, 180)),
            0,
            360,
            float(rng.choice([-1.0, 1.0]) * rng.uniform(28, 40)),
            -1,
        )
        layer = cv2.GaussianBlur(layer, (0, 0), 2.0).astype(np.float32)
        layer[np.abs(layer) < 3.0] = 0.0
    else:  # pragma: no cover - internal
        raise ValueError(cls)
    return layer


def _layer_box(layer: np.ndarray, min_side: int = 4) -> list[float] | None:
    """Tight box of the non-zero pixels, grown to at least ``min_side`` px per side (thin horizontal or vertical
    scratches would otherwise get 1-px boxes that vanish when resized)."""
    ys, xs = np.nonzero(layer)
    if len(xs) == 0:
        return None
    h, w = layer.shape
    box = []
    for lo, hi, size in ((int(xs.min()), int(xs.max()) + 1, w), (int(ys.min()), int(ys.max()) + 1, h)):
        grow = max(0, min_side - (hi - lo))
        lo, hi = max(0, lo - grow // 2), min(size, hi + grow - grow // 2)
        box.append((lo, hi))
    return [float(box[0][0]), float(box[1][0]), float(box[0][1]), float(box[1][1])]


def _iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area > 0 else 0.0


def _detection_image(
    rng: np.random.Generator, h: int, w: int, background: list[np.ndarray] | None = None
) -> tuple[np.ndarray, list[list[float]], list[int]]:
    """An image with 1-3 planted defects; ``background`` (if given) receives the defect-free image."""
    img = _steel_background(rng, h, w)
    if background is not None:
        background.append(np.clip(img, 0, 255).astype(np.uint8))
    boxes: list[list[float]] = []
    labels: list[int] = []
    for _ in range(int(rng.integers(1, 4))):
        cls = int(rng.integers(len(SYNTHETIC_DET_CLASSES)))
        for _try in range(10):
            layer = _draw_defect(SYNTHETIC_DET_CLASSES[cls], rng, h, w)
            box = _layer_box(layer)
            if box is not None and all(_iou(box, b) < 0.05 for b in boxes):
                img += layer
                boxes.append(box)
                labels.append(cls)
                break
    return np.clip(img, 0, 255).astype(np.uint8), boxes, labels


def _random_walk(rng: np.random.Generator, h: int, w: int, start: np.ndarray, steps: int) -> np.ndarray:
    ang = rng.uniform(0, 2 * np.pi)
    pts = [start.copy()]
    for _ in range(steps):
        ang += rng.normal(0, 0.35)
        pts.append(pts[-1] + rng.uniform(2.5, 5.0) * np.array([np.cos(ang), np.sin(ang)]))
    return np.round(np.array(pts)).astype(np.int32)


def _crack_image(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    base = rng.uniform(110, 150)
    img = base + cv2.GaussianBlur(rng.normal(0, 10, (h, w)).astype(np.float32), (0, 0), 0.8)
    for _ in range(int(rng.integers(h * w // 400, h * w // 200))):
        c = (int(rng.integers(w)), int(rng.integers(h)))
        cv2.circle(img, c, int(rng.integers(1, 3)), float(base + rng.uniform(-30, 30)), -1)
    mask = np.zeros((h, w), np.uint8)
    n_cracks = 0 if rng.random() < 0.1 else int(rng.integers(1, 4))
    for _ in range(n_cracks):
        pts = _random_walk(rng, h, w, rng.uniform([0, 0], [w, h]), int(rng.integers(20, 60)))
        thick = int(rng.integers(1, 4))
        cv2.polylines(mask, [pts], False, 1, thick, cv2.LINE_8)
        if rng.random() < 0.3:
            branch = _random_walk(rng, h, w, pts[int(rng.integers(len(pts)))].astype(float), int(rng.integers(8, 25)))
            cv2.polylines(mask, [branch], False, 1, max(1, thick - 1), cv2.LINE_8)
    img -= mask * rng.uniform(55, 80)
    tint = rng.uniform(0.92, 1.05, 3).astype(np.float32)
    rgb = np.clip(img[..., None] * tint, 0, 255).astype(np.uint8)
    return rgb, mask


# ------------------------------------------------------------------------------------------------------- writing
