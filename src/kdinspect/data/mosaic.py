"""4-image mosaic for detection training (YOLOv4 / Ultralytics style), at the dataset level.

Each of four images is resized to ``size x size`` (the square training size) and a corner of it is placed around a
random centre ``(xc, yc)`` of a ``size x size`` canvas: image 0 fills the top-left quarter up to the centre with its
bottom-right part, image 1 the top-right with its bottom-left part, and so on. Objects therefore keep the training
scale, while an image shows parts of four scenes and objects cut at the tile borders. Boxes are shifted with their
tile, clipped to it, and left out when less than :data:`MIN_VISIBLE` of their area (or under :data:`MIN_SIDE` px in
width or height) is left (such a sliver is not a learnable object).

The dataset draws the three partner images and the centre with the per-``(seed, epoch, index)`` generator, so a
mosaic is the same whatever the number of workers and after a resume.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

__all__ = ["MIN_SIDE", "MIN_VISIBLE", "draw_mosaic", "mosaic4"]

MIN_VISIBLE = 0.1  # a box keeps at least this fraction of its (resized) area inside its tile, else it is left out
MIN_SIDE = 2.0  # and at least this many pixels of width and height


def _resize(image: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    if (h, w) != (size, size):
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    scale = np.array([size / w, size / h, size / w, size / h], dtype=np.float32)
    return image, np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * scale


def mosaic4(
    tiles: list[tuple[np.ndarray, np.ndarray, np.ndarray]], size: int, center: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combine four ``(image (H, W, 3) uint8, boxes (N, 4) xyxy px, labels (N,))`` into one ``size x size`` image.

    Args:
        tiles: the four images with their boxes (top-left, top-right, bottom-left, bottom-right).
        size: output side (and the side each image is resized to first).
        center: ``(xc, yc)`` where the four tiles meet, each in ``[1, size - 1]``.

    Returns:
        image (size, size, 3) uint8, boxes (M, 4) float32 xyxy, labels (M,) int64.
    """
    if len(tiles) != 4:
        raise ValueError(f"a mosaic needs 4 images, got {len(tiles)}")
    xc, yc = center
    if not (0 < xc < size and 0 < yc < size):
        raise ValueError(f"mosaic centre {center} is not inside the {size}x{size} canvas")
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    # (canvas x1, y1, x2, y2) of each tile, and the offset that maps tile pixels onto the canvas
    regions = [(0, 0, xc, yc), (xc, 0, size, yc), (0, yc, xc, size), (xc, yc, size, size)]
    offsets = [(xc - size, yc - size), (xc, yc - size), (xc - size, yc), (xc, yc)]
    all_boxes, all_labels = [], []
    for (image, boxes, labels), (x1, y1, x2, y2), (dx, dy) in zip(tiles, regions, offsets, strict=True):
        image, boxes = _resize(image, boxes, size)
        canvas[y1:y2, x1:x2] = image[y1 - dy : y2 - dy, x1 - dx : x2 - dx]
        shifted = boxes + np.array([dx, dy, dx, dy], dtype=np.float32)
        clipped = np.stack(
            [
                shifted[:, 0].clip(x1, x2),
                shifted[:, 1].clip(y1, y2),
                shifted[:, 2].clip(x1, x2),
                shifted[:, 3].clip(y1, y2),
            ],
            axis=1,
        ).reshape(-1, 4)
        cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
        area = (shifted[:, 2] - shifted[:, 0]) * (shifted[:, 3] - shifted[:, 1])
        keep = (cw >= MIN_SIDE) & (ch >= MIN_SIDE) & (cw * ch >= MIN_VISIBLE * np.maximum(area, 1e-6))
        all_boxes.append(clipped[keep])
        all_labels.append(np.asarray(labels, dtype=np.int64).reshape(-1)[keep])
    return canvas, np.concatenate(all_boxes).astype(np.float32), np.concatenate(all_labels)


def draw_mosaic(n: int, index: int, size: int) -> tuple[list[int], tuple[int, int]]:
    """The four record indices of the mosaic of sample ``index`` (itself and three drawn uniformly from ``n``
    records, in a random tile order) and its centre in ``[size / 4, 3 size / 4]``, drawn from torch's generator
    (which the dataset seeds per sample)."""
    chosen = [index, *torch.randint(0, n, (3,)).tolist()]
    order = torch.randperm(4).tolist()
    lo, hi = size // 4, max(size - size // 4, size // 4 + 1)
    xc, yc = torch.randint(lo, hi, (2,)).tolist()
    return [chosen[k] for k in order], (max(1, min(size - 1, xc)), max(1, min(size - 1, yc)))
