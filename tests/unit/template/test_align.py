"""Registration of a reference onto its test image: residual error on known shifts/rotations, clear failure."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from kdinspect.deploy.align import register, warp_error


def _board(seed: int = 0, size: int = 192) -> np.ndarray:
    """A PCB-like binary layout: random rectangles and tracks, RGB uint8."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 30, np.uint8)
    for _ in range(40):
        x, y = rng.integers(0, size - 20, 2)
        w, h = rng.integers(4, 40, 2)
        cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), 220, -1)
    return np.repeat(img[..., None], 3, axis=2)


def _warp(dx: float, dy: float, deg: float, size: int) -> np.ndarray:
    """(3, 3) image -> reference coordinates: rotation by ``deg`` about the centre plus a shift."""
    m = cv2.getRotationMatrix2D((size / 2, size / 2), deg, 1.0)
    m[:, 2] += (dx, dy)
    return np.vstack([m, [0, 0, 1]])


@pytest.mark.parametrize(("dx", "dy", "deg"), [(3.0, -2.0, 0.0), (0.0, 0.0, 1.0), (4.0, 3.0, -1.0)])
@pytest.mark.parametrize("method", ["ecc", "orb"])
def test_register_recovers_known_shift_and_rotation(dx: float, dy: float, deg: float, method: str) -> None:
    image = _board()
    size = image.shape[0]
    true = _warp(dx, dy, deg, size)
    # the reference is the image moved by the true warp: reference(true @ p) = image(p)
    reference = cv2.warpAffine(image, true[:2], (size, size), borderMode=cv2.BORDER_REPLICATE)
    before = warp_error(np.eye(3), true, (size, size))
    res = register(image, reference, method=method)
    assert res.ok, res.message
    after = warp_error(res.warp, true, (size, size))
    assert before > 1.0
    assert after < (0.3 if method == "ecc" else 1.0), f"residual {after:.3f} px (before {before:.2f} px)"
    inner = slice(20, size - 20)
    diff_before = np.abs(reference.astype(int) - image)[inner, inner].mean()
    diff_after = np.abs(res.reference.astype(int) - image)[inner, inner].mean()
    assert diff_after < 0.6 * diff_before  # edges stay blurred by two bilinear resamplings


def test_register_failure_warns_and_returns_reference_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    image = _board(0)
    unrelated = np.random.default_rng(5).integers(0, 255, image.shape, dtype=np.uint8)
    with caplog.at_level(logging.WARNING, logger="kdinspect.deploy.align"):
        res = register(image, unrelated, method="ecc", name="board_017.png")
    assert not res.ok and res.message
    assert np.array_equal(res.reference, unrelated)
    assert np.array_equal(res.warp, np.eye(3))
    assert any("registration failed for board_017.png" in r.getMessage() for r in caplog.records)


def test_register_resizes_reference_and_rejects_bad_method() -> None:
    image = _board(1)
    small = cv2.resize(image, (96, 96), interpolation=cv2.INTER_NEAREST)
    res = register(image, small, method="none")
    assert res.ok and res.reference.shape == image.shape
    with pytest.raises(ValueError, match="align method 'sift' not in"):
        register(image, image, method="sift")
