"""Overlays for results (numpy + OpenCV only, shared by training-side predict and the runtime)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["Window", "color_for", "draw_detections", "overlay_mask"]

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
    scores: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    thickness: int = 0,
) -> np.ndarray:
    """Draw boxes with class name and score on a copy of ``image``.

    Args:
        image: (H, W, 3) uint8 RGB.
        boxes: (N, 4) xyxy pixels.
        scores: (N,) scores.
        labels: (N,) class indices.
        classes: class names.
        thickness: line width (0 = from the image size).
    """
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    t = thickness or max(1, round(min(h, w) / 250))
    font = max(0.35, min(h, w) / 900)
    boxes, scores, labels = np.asarray(boxes).reshape(-1, 4), np.asarray(scores).ravel(), np.asarray(labels).ravel()
    for box, score, label in zip(boxes, scores, labels):
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        color = color_for(int(label))
        cv2.rectangle(out, (x1, y1), (x2, y2), color, t, cv2.LINE_AA)
        name = classes[int(label)] if 0 <= int(label) < len(classes) else str(int(label))
        text = f"{name} {float(score):.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        ty = max(y1, th + base + 1)
        cv2.rectangle(out, (x1, ty - th - base - 1), (x1 + tw + 2, ty), color, -1)
        cv2.putText(out, text, (x1 + 1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), 1, cv2.LINE_AA)
    return out


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
