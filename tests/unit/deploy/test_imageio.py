"""Runtime image decoding: clear errors for bad bytes, header size checks before decoding."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from kdinspect.deploy.imageio import ImageDecodeError, decode_image, image_header_size


def _jpeg(h: int = 20, w: int = 30) -> bytes:
    return cv2.imencode(".jpg", np.full((h, w, 3), 128, np.uint8))[1].tobytes()


def _png_header(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_valid_jpeg_png_decode_to_rgb() -> None:
    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 0] = 255  # red in RGB
    png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes()
    assert image_header_size(png) == ("png", (20, 30)) and image_header_size(_jpeg()) == ("jpeg", (20, 30))
    out = decode_image(png)
    assert out.shape == (20, 30, 3) and out[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty input"),
        (b"hello, this is not an image", "unknown format"),
        (_jpeg()[:-200], "truncated JPEG"),
        (_png_header(20000, 20000) + b"\x00" * 100, "too large: 20000x20000"),
    ],
)
def test_bad_bytes_raise_clear_errors(data: bytes, match: str) -> None:
    with pytest.raises(ImageDecodeError, match=match):
        decode_image(data, max_pixels=4096 * 4096, source="upload")
