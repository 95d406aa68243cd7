"""Overlays for results (numpy + OpenCV only, shared by training-side predict and the runtime)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["Window", "color_for", "draw_detections", "label_boxes", "overlay_mask"]

_PALETTE = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (170, 110, 40),
]


def color_for(label: int) -> tuple[int, int, int]:
    """A distinct RGB colour per class index."""
    return _PALETTE[int(label) % len(_PALETTE)]


def draw_detections(
    image: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray | None,
    labels: np.ndarray,
    classes: Sequence[str],
    thickness: int = 0,
) -> np.ndarray:
    """Draw boxes with class name and score on a copy of ``image``.

    Args:
        image: (H, W, 3) uint8 RGB.
        boxes: (N, 4) xyxy pixels.
        scores: (N,) scores, or None for ground truth (the label shows the class name only).
        labels: (N,) class indices.
        classes: class names.
        thickness: line width (0 = from the image size).
    """
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    t = thickness or max(1, round(min(h, w) / 250))
    font = max(0.35, min(h, w) / 900)
    boxes, labels = np.asarray(boxes).reshape(-1, 4), np.asarray(labels).ravel()
    scores = np.full(len(boxes), np.nan) if scores is None else np.asarray(scores).ravel()
    texts, sizes = [], []
    for box, score, label in zip(boxes, scores, labels):
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color_for(int(label)), t, cv2.LINE_AA)
        name = classes[int(label)] if 0 <= int(label) < len(classes) else str(int(label))
        texts.append(name if np.isnan(score) else f"{name} {float(score):.2f}")
        (tw, th), base = cv2.getTextSize(texts[-1], cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        sizes.append((tw + 2, th + base + 1, base))
    # labels after all boxes, each where it overlaps no earlier label (so none is drawn over another or a box line)
    for (lx, ly, lw, lh), text, label, (_, _, base) in zip(
        label_boxes(boxes, [(s[0], s[1]) for s in sizes], (h, w)), texts, labels, sizes
    ):
        cv2.rectangle(out, (lx, ly), (lx + lw, ly + lh), color_for(int(label)), -1)
        cv2.putText(out, text, (lx + 1, ly + lh - base), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def label_boxes(
    boxes: np.ndarray, sizes: Sequence[tuple[int, int]], image_size: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
    """Where each box's label goes, as ``(x, y, w, h)`` rectangles inside the image that do not overlap.

    A label sits just above its box if that spot is free, else just inside its top edge, else below the box, else it
    moves down (then up) in label-height steps from above the box until it finds a free spot; only when the image
    has no free spot left does it overlap (at the first candidate).
    """
    h_img, w_img = image_size
    placed: list[tuple[int, int, int, int]] = []
    for box, (lw, lh) in zip(np.asarray(boxes).reshape(-1, 4), sizes):
        x1, y1, _, y2 = (round(float(v)) for v in box)
        x = min(max(0, x1), max(0, w_img - lw))
        steps = range(1, max(1, h_img // max(lh, 1)) + 1)
        cands = [y1 - lh, y1, y2, *(y1 - lh + k * lh for k in steps), *(y1 - lh - k * lh for k in steps)]
        cands = [min(max(0, y), max(0, h_img - lh)) for y in cands]
        spot = next(((x, y, lw, lh) for y in cands if not any(_overlaps((x, y, lw, lh), p) for p in placed)), None)
        placed.append(spot or (x, cands[0], lw, lh))
    return placed


def overlay_mask(
    image: np.ndarray,
    prob: np.ndarray,
    threshold: float = 0.5,
    color: tuple[int, int, int] = (255, 0, 0),
    alpha: float = 0.6,
) -> np.ndarray:
    """Tint pixels with ``prob >= threshold``. image: (H, W, 3) uint8 RGB; prob: (H, W) in [0, 1]."""
    if prob.shape != image.shape[:2]:
        raise ValueError(f"probability map {prob.shape} does not match image {image.shape[:2]}")
    out = image.astype(np.float32).copy()
    sel = prob >= threshold
    out[sel] = (1 - alpha) * out[sel] + alpha * np.asarray(color, dtype=np.float32)
    return out.clip(0, 255).astype(np.uint8)


class Window:
    """A local OpenCV window; ``show`` returns False once the user pressed q or Esc."""

    def __init__(self, name: str) -> None:
        self.name = name
        try:
            cv2.namedWindow(name, cv2.WINDOW_NORMAL)
        except cv2.error as err:
            raise RuntimeError(
                "--show needs OpenCV with GUI support (pip install opencv-python; the headless build has no windows)"
            ) from err

    def show(self, rgb: np.ndarray) -> bool:
        """Show a frame; False when the user pressed q or Esc."""
        cv2.imshow(self.name, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)

    def close(self) -> None:
        cv2.destroyWindow(self.name)
