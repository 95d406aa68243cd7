"""The HSD paper's image-level "fault accuracy" (Zhang et al., Advanced Engineering Informatics 2023,
arXiv:2307.00701; the protocol of its released evaluation code).

The released protocol keeps the top-1 box of each image and, for a score threshold t, counts an image as
"fault predicted" when that box scores >= t. Then, over N images:

- false detection: no ground-truth fault, but a fault predicted;
- missed detection: a ground-truth fault, but none predicted;
- error location: both present but the top box's top-left corner is more than ``loc_tol`` pixels away from every
  ground-truth box's corner in x *and* in y (counted separately, not part of the accuracy);
- accuracy = 1 - (false + missed) / N.

The measure ignores classes (it was defined on one-class data); on multi-class data it is the class-agnostic version.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kdinspect.data.structures import Detections

__all__ = ["DEFAULT_THRESHOLDS", "fault_accuracy"]

DEFAULT_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def fault_accuracy(
    predictions: Sequence[Detections],
    gt_boxes: Sequence[np.ndarray],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    loc_tol: float = 20.0,
) -> dict[str, float]:
    """Image-level fault accuracy at several score thresholds.

    Args:
        predictions: one :class:`Detections` per image (original pixels).
        gt_boxes: one (M_i, 4) xyxy array per image (M_i = 0 for a fault-free image), same order.
        thresholds: score thresholds t (a top box scoring >= t counts as a predicted fault).
        loc_tol: corner tolerance in pixels for the error-location count.

    Returns:
        Flat dict with ``fault_acc@t``, ``fault_false@t``, ``fault_missed@t``, ``fault_errloc@t`` per threshold and
        ``fault_images``.

    Raises:
        ValueError: predictions and ground truth have different lengths.
    """
    if len(predictions) != len(gt_boxes):
        raise ValueError(f"{len(predictions)} predictions but {len(gt_boxes)} ground-truth entries")
    n = len(predictions)
    top_scores = np.full(n, -1.0)
    top_corner = np.zeros((n, 2))
    for i, det in enumerate(predictions):
        if det.scores.numel():
            j = int(det.scores.argmax())
            top_scores[i] = float(det.scores[j])
            top_corner[i] = det.boxes[j, :2].detach().cpu().numpy()
    has_gt = np.array([len(g) > 0 for g in gt_boxes])
    far = np.array(
        [
            len(g) > 0 and bool(np.all((np.abs(g[:, 0] - c[0]) > loc_tol) & (np.abs(g[:, 1] - c[1]) > loc_tol)))
            for g, c in zip(gt_boxes, top_corner)
        ]
    )
    out: dict[str, float] = {"fault_images": float(n)}
    for t in thresholds:
        pred = top_scores >= t
        false = int(np.sum(pred & ~has_gt))
        missed = int(np.sum(~pred & has_gt))
        out[f"fault_acc@{t:g}"] = 1.0 - (false + missed) / max(n, 1)
        out[f"fault_false@{t:g}"] = float(false)
        out[f"fault_missed@{t:g}"] = float(missed)
        out[f"fault_errloc@{t:g}"] = float(np.sum(pred & far))
    return out
