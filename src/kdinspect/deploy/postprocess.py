"""Pre- and post-processing around an exported graph (numpy + OpenCV): resize, host NMS, mapping back to the image.

Result types are plain dataclasses of numpy arrays with a ``to_json()`` for the CLI, the stream and the service.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

__all__ = [
    "DetectionResult",
    "SegmentationResult",
    "host_nms",
    "letterbox_free_resize",
    "split_dets",
    "to_input_tensor",
]


@dataclass
class DetectionResult:
    """Detections of one image in original pixels. boxes: (N, 4) xyxy; scores: (N,); labels: (N,) int64."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    classes: Sequence[str]
    image_size: tuple[int, int]  # (H, W) of the original image

    def __len__(self) -> int:
        return len(self.scores)

    def to_json(self) -> dict[str, Any]:
        h, w = self.image_size
        dets = [
            {
                "box": [round(float(v), 2) for v in b],
                "score": round(float(s), 4),
                "label": int(lb),
                "class": self.classes[int(lb)] if 0 <= int(lb) < len(self.classes) else str(int(lb)),
            }
            for b, s, lb in zip(self.boxes, self.scores, self.labels)
        ]
        return {"task": "detection", "width": w, "height": h, "detections": dets}


@dataclass
class SegmentationResult:
    """Defect probability of one image at its original size. prob: (H, W) float32 in [0, 1]."""

    prob: np.ndarray
    threshold: float = 0.5

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool defect mask at ``threshold``."""
        return self.prob >= self.threshold

    def to_json(self) -> dict[str, Any]:
        h, w = self.prob.shape
        mask = self.mask
        n = int(mask.sum())
        out: dict[str, Any] = {
            "task": "segmentation",
            "width": w,
            "height": h,
            "threshold": self.threshold,
            "defect_pixels": n,
            "defect_ratio": round(n / max(1, h * w), 6),
        }
        if n:
            ys, xs = np.nonzero(mask)
            out["bbox"] = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
            out["max_prob"] = round(float(self.prob.max()), 4)
        return out


def letterbox_free_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Plain resize of (H, W, C) ``image`` to ``size`` (H, W): area interpolation when shrinking (close to the
    antialiased resize used in training), bilinear when enlarging."""
    h, w = image.shape[:2]
    if (h, w) == tuple(size):
        return image
    interp = cv2.INTER_AREA if size[0] * size[1] < h * w else cv2.INTER_LINEAR
    return cv2.resize(image, (size[1], size[0]), interpolation=interp)


def to_input_tensor(images: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 (H, W, 3) images -> float32 (B, 3, H', W') in [0, 1] at ``size`` (the ONNX contract's input)."""
    batch = np.empty((len(images), 3, *size), np.float32)
    for i, img in enumerate(images):
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {img.shape}")
        resized = letterbox_free_resize(img, size)
        np.multiply(resized.transpose(2, 0, 1), 1.0 / 255.0, out=batch[i], casting="unsafe")
    return batch


def _scale_boxes(boxes: np.ndarray, input_size: tuple[int, int], image_size: tuple[int, int]) -> np.ndarray:
    """Map (N, 4) xyxy boxes from input pixels to original pixels and clip them to the image."""
    sy, sx = input_size[0] / image_size[0], input_size[1] / image_size[1]
    out = boxes.astype(np.float32) / np.array([sx, sy, sx, sy], np.float32)
    out[:, 0::2] = out[:, 0::2].clip(0, image_size[1])
    out[:, 1::2] = out[:, 1::2].clip(0, image_size[0])
    return out


def split_dets(
    dets: np.ndarray,
    batch: int,
    score_thr: float,
    input_size: tuple[int, int],
    image_sizes: Sequence[tuple[int, int]],
    classes: Sequence[str],
) -> list[DetectionResult]:
    """Split the in-graph-NMS output ``dets`` (N, 7) ``[batch, x1, y1, x2, y2, score, class]`` per image."""
    dets = np.asarray(dets, np.float32).reshape(-1, 7)
    out = []
    for b in range(batch):
        d = dets[(dets[:, 0] == b) & (dets[:, 5] >= score_thr)]
        d = d[np.argsort(-d[:, 5], kind="stable")]
        out.append(
            DetectionResult(
                _scale_boxes(d[:, 1:5], input_size, image_sizes[b]),
                d[:, 5].copy(),
                d[:, 6].astype(np.int64),
                classes,
                (int(image_sizes[b][0]), int(image_sizes[b][1])),
            )
        )
    return out


def host_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    score_thr: float,
    iou_thr: float,
    max_det: int = 300,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class-wise NMS of one image (OpenCV ``NMSBoxesBatched``).

    Args:
        boxes: (A, 4) xyxy input pixels.
        scores: (A, C) per-class scores.

    Returns:
        boxes (N, 4), scores (N,), labels (N,) int64, sorted by score, N <= max_det.
    """
    cand_a, cand_c = np.nonzero(scores >= score_thr)  # every (anchor, class) pair above the threshold
    if cand_a.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    b = boxes[cand_a].astype(np.float32)
    s = scores[cand_a, cand_c].astype(np.float32)
    xywh = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)
    keep = np.asarray(
        cv2.dnn.NMSBoxesBatched(xywh.tolist(), s.tolist(), cand_c.tolist(), score_thr, iou_thr), np.int64
    ).reshape(-1)
    keep = keep[np.argsort(-s[keep], kind="stable")][:max_det]
    return b[keep], s[keep], cand_c[keep].astype(np.int64)
