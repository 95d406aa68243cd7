"""Register a reference image (golden board, template) onto a test image before a reference-aware detector.

Real image pairs are not pixel-aligned: the board sits a few pixels off, turned a fraction of a degree. The detector
sees ``image`` and ``reference`` (or their difference) channel by channel, so a misaligned reference turns every edge
into a "defect". :func:`register` estimates the warp that maps the reference onto the image and resamples it:

- ``ecc``: OpenCV's enhanced correlation coefficient maximisation (``cv2.findTransformECC``), dense and sub-pixel,
  for small misalignments (a few percent of the image, a few degrees), run coarse to fine on a downscaled copy.
- ``orb``: ORB features + RANSAC (``cv2.estimateAffinePartial2D`` / ``cv2.findHomography``), for larger offsets.

Registration can fail (too little texture, a different board, a too-large offset): the result then says so
(``ok=False`` and a ``message``), a WARNING names the file, and the reference is returned unchanged: the caller
decides whether to go on. Only numpy and OpenCV are used, so the torch-free runtime (``kdinspect.deploy``) and the
training data pipeline share this code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["ALIGN_METHODS", "AlignResult", "align_reference", "move", "register", "warp_error"]

logger = logging.getLogger(__name__)

ALIGN_METHODS = ("none", "ecc", "orb")
_MOTIONS = ("translation", "euclidean", "affine", "homography")


@dataclass
class AlignResult:
    """Outcome of one registration.

    Attributes:
        reference: the reference resampled onto the image grid (the input reference when ``ok`` is False).
        warp: (3, 3) matrix mapping image pixel coordinates to reference pixel coordinates (identity on failure).
        ok: registration converged and passed the sanity checks.
        score: ECC correlation coefficient, or the RANSAC inlier ratio for ``orb`` (0 on failure).
        message: why it failed ("" when ok).
    """

    reference: np.ndarray
    warp: np.ndarray
    ok: bool
    score: float
    message: str = ""


def _gray(img: np.ndarray) -> np.ndarray:
    import cv2

    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return img.astype(np.float32) / (255.0 if img.dtype == np.uint8 else 1.0)


def _resample(reference: np.ndarray, warp: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The reference sampled at ``warp @ (x, y, 1)`` for every image pixel (replicated border)."""
    import cv2

    h, w = size
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    if np.allclose(warp[2], [0, 0, 1]):
        return cv2.warpAffine(reference, warp[:2], (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpPerspective(reference, warp, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)


def _ecc(
    img: np.ndarray, ref: np.ndarray, motion: str, max_side: int, iters: int, eps: float
) -> tuple[np.ndarray, float]:
    """(3, 3) warp image -> reference coordinates and the final correlation, coarse to fine."""
    import cv2

    mode = {
        "translation": cv2.MOTION_TRANSLATION,
        "euclidean": cv2.MOTION_EUCLIDEAN,
        "affine": cv2.MOTION_AFFINE,
        "homography": cv2.MOTION_HOMOGRAPHY,
    }[motion]
    g_img, g_ref = _gray(img), _gray(ref)
    levels, side = [], max(g_img.shape)
    s = min(1.0, max_side / side) if max_side > 0 else 1.0
    while s < 1.0:  # pyramid: coarsest first, ending at full resolution
        levels.append(s)
        s *= 2
    levels.append(1.0)
    warp = np.eye(3, dtype=np.float32)
    cc, prev = 0.0, None
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iters, eps)
    for s in levels:
        a = cv2.resize(g_img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else g_img
        b = cv2.resize(g_ref, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else g_ref
        if prev is not None:  # rescale the warp of the previous level to this one
            k = s / prev
            scale = np.diag([k, k, 1.0]).astype(np.float32)
            warp = scale @ warp @ np.linalg.inv(scale)
        a = cv2.GaussianBlur(a, (5, 5), 0)
        b = cv2.GaussianBlur(b, (5, 5), 0)
        w = warp if mode == cv2.MOTION_HOMOGRAPHY else warp[:2].copy()
        cc, w = cv2.findTransformECC(a, b, w.astype(np.float32), mode, criteria, None, 1)
        warp = w if w.shape == (3, 3) else np.vstack([w, [0, 0, 1]]).astype(np.float32)
        prev = s
    return warp.astype(np.float64), float(cc)


def _orb(img: np.ndarray, ref: np.ndarray, motion: str, features: int) -> tuple[np.ndarray, float]:
    import cv2

    to_u8 = lambda g: np.clip(g * 255, 0, 255).astype(np.uint8)  # noqa: E731
    a, b = to_u8(_gray(img)), to_u8(_gray(ref))
    orb = cv2.ORB_create(features)
    ka, da = orb.detectAndCompute(a, None)
    kb, db = orb.detectAndCompute(b, None)
    if da is None or db is None or len(ka) < 8 or len(kb) < 8:
        raise ValueError(f"too few ORB features (image {len(ka)}, reference {len(kb)})")
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(da, db)
    if len(matches) < 8:
        raise ValueError(f"only {len(matches)} ORB matches")
    pa = np.float32([ka[m.queryIdx].pt for m in matches])
    pb = np.float32([kb[m.trainIdx].pt for m in matches])
    if motion == "homography":
        warp, inl = cv2.findHomography(pa, pb, cv2.RANSAC, 3.0)
    else:
        est = cv2.estimateAffinePartial2D if motion in ("translation", "euclidean") else cv2.estimateAffine2D
        warp, inl = est(pa, pb, method=cv2.RANSAC, ransacReprojThreshold=3.0)
        warp = None if warp is None else np.vstack([warp, [0, 0, 1]])
    if warp is None or inl is None:
        raise ValueError("RANSAC found no consistent transform")
    return np.asarray(warp, np.float64), float(inl.mean())


def register(
    image: np.ndarray,
    reference: np.ndarray,
    method: str = "ecc",
    motion: str = "euclidean",
    max_side: int = 256,
    iterations: int = 100,
    eps: float = 1e-5,
    min_score: float = 0.3,
    max_shift: float = 0.1,
    features: int = 2000,
    name: str = "",
) -> AlignResult:
    """Warp ``reference`` onto ``image``.

    Args:
        image: (H, W, 3) uint8 RGB test image (or (H, W) gray).
        reference: its reference, same layout; resized to the image size first when the sizes differ.
        method: ``ecc``, ``orb`` or ``none`` (identity, ``ok`` True).
        motion: ``translation``, ``euclidean`` (shift + rotation; default), ``affine`` or ``homography``.
        max_side: ECC only: the coarsest pyramid level's longest side (0 = full resolution only).
        iterations: ECC iterations per level.
        eps: ECC convergence threshold.
        min_score: below this ECC correlation / ORB inlier ratio the registration counts as failed.
        max_shift: a warp that moves the image centre by more than this fraction of the image side counts as failed.
        features: ORB only: features per image.
        name: file name for the failure warning.

    Returns:
        An :class:`AlignResult`; on failure the input reference (resized to the image) and ``ok=False``, and a
        WARNING ``registration failed for <name>: <why>; the reference is used unaligned`` is logged.
    """
    import cv2

    if method not in ALIGN_METHODS:
        raise ValueError(f"align method {method!r} not in {list(ALIGN_METHODS)}")
    if motion not in _MOTIONS:
        raise ValueError(f"align motion {motion!r} not in {list(_MOTIONS)}")
    h, w = image.shape[:2]
    if reference.shape[:2] != (h, w):
        reference = cv2.resize(reference, (w, h), interpolation=cv2.INTER_LINEAR)
    eye = np.eye(3)
    if method == "none":
        return AlignResult(reference, eye, True, 1.0)
    try:
        if method == "ecc":
            warp, score = _ecc(image, reference, motion, max_side, iterations, eps)
        else:
            warp, score = _orb(image, reference, motion, features)
        centre = np.array([w / 2, h / 2, 1.0])
        moved = warp @ centre
        shift = float(np.hypot(*(moved[:2] / moved[2] - centre[:2])))
        if not np.isfinite(warp).all():
            raise ValueError("the estimated warp is not finite")
        if score < min_score:
            raise ValueError(f"score {score:.3f} < min_score {min_score}")
        if shift > max_shift * max(h, w):
            raise ValueError(f"estimated shift {shift:.1f} px exceeds max_shift {max_shift} of the image side")
    except (cv2.error, ValueError, np.linalg.LinAlgError) as err:
        msg = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        logger.warning("registration failed for %s: %s; the reference is used unaligned", name or "an image", msg)
        return AlignResult(reference, eye, False, 0.0, msg)
    return AlignResult(_resample(reference, warp, (h, w)), warp, True, score)


def align_reference(image: np.ndarray, reference: np.ndarray, method: str = "none", name: str = "") -> np.ndarray:
    """The reference resized to the image and, unless ``method`` is ``none``, registered onto it (see
    :func:`register`; on failure the unaligned reference, with a warning)."""
    return register(image, reference, method=method, name=name).reference


def move(image: np.ndarray, dx: float = 0.0, dy: float = 0.0, degrees: float = 0.0) -> np.ndarray:
    """``image`` rotated by ``degrees`` about its centre and shifted by (dx, dy) pixels (replicated border): a
    misaligned reference for robustness checks."""
    import cv2

    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_error(estimated: np.ndarray, true: np.ndarray, size: tuple[int, int], margin: float = 0.1) -> float:
    """Mean distance in pixels between where two image -> reference warps send the pixels of ``size`` (an inner
    grid, ``margin`` of each side left out): the residual registration error."""
    h, w = size
    ys, xs = np.meshgrid(np.linspace(margin * h, (1 - margin) * h, 9), np.linspace(margin * w, (1 - margin) * w, 9))
    pts = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    a, b = estimated @ pts, true @ pts
    return float(np.linalg.norm(a[:2] / a[2] - b[:2] / b[2], axis=0).mean())
