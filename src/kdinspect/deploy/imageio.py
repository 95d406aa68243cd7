"""Image decoding for the runtime (OpenCV + numpy only), with size checks made on the header before any decoding.

``decode_image`` is what the HTTP service and ``kdinspect predict`` use: it rejects empty input, unknown formats,
truncated JPEG/PNG files and images larger than a pixel limit (read from the header, so a 20000x20000 header never
allocates 1.2 GB), each with an :class:`ImageDecodeError` that says what is wrong.
"""

from __future__ import annotations

import glob
import struct
from pathlib import Path

import cv2
import numpy as np

__all__ = ["IMAGE_EXTENSIONS", "ImageDecodeError", "decode_image", "image_header_size", "list_images", "read_image"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class ImageDecodeError(ValueError):
    """Bytes that are not a usable image. ``reason`` is a short, user-facing explanation."""

    def __init__(self, reason: str, source: str = "") -> None:
        self.reason = reason
        self.source = source
        super().__init__(f"{source}: {reason}" if source else reason)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(H, W) from the first SOF marker of a JPEG, or None when none is found."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF:
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(h), int(w)
        i += 2 + length
    return None


def image_header_size(data: bytes) -> tuple[str, tuple[int, int] | None]:
    """Format name and (H, W) read from the header of JPEG, PNG, BMP or WebP bytes (size None for other formats)."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg", _jpeg_size(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return "png", (int(h), int(w))
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return "bmp", (abs(int(h)), abs(int(w)))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        if data[12:16] == b"VP8X":
            w = 1 + int.from_bytes(data[24:27], "little")
            h = 1 + int.from_bytes(data[27:30], "little")
            return "webp", (h, w)
        return "webp", None
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff", None
    return "unknown", None


def _is_truncated(fmt: str, data: bytes) -> bool:
    if fmt == "jpeg":
        return b"\xff\xd9" not in data[-64:].rstrip(b"\x00")  # no end-of-image marker
    if fmt == "png":
        return b"IEND" not in data[-32:]
    return False


def decode_image(data: bytes, max_pixels: int = 40_000_000, source: str = "") -> np.ndarray:
    """Decode image bytes to an RGB array after checking the header.

    Args:
        data: encoded JPEG, PNG, BMP, WebP or TIFF bytes.
        max_pixels: largest accepted H * W (checked on the header where the format allows it).
        source: name used in error messages (file name or upload field).

    Returns:
        (H, W, 3) uint8 RGB.

    Raises:
        ImageDecodeError: empty, unknown format, header too large, truncated, or undecodable.
    """
    if not data:
        raise ImageDecodeError("empty input (0 bytes)", source)
    fmt, size = image_header_size(data)
    if fmt == "unknown":
        raise ImageDecodeError(
            f"not an image: unknown format (first bytes {data[:8].hex()}); expected JPEG, PNG, BMP, WebP or TIFF",
            source,
        )
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageDecodeError(
            f"image too large: {size[1]}x{size[0]} = {size[0] * size[1]} pixels (limit {max_pixels})", source
        )
    if _is_truncated(fmt, data):
        raise ImageDecodeError(f"truncated {fmt.upper()} (no end marker)", source)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise ImageDecodeError(f"corrupt {fmt.upper()}: OpenCV could not decode it", source)
    if img.shape[0] * img.shape[1] > max_pixels:
        raise ImageDecodeError(f"image too large: {img.shape[1]}x{img.shape[0]} pixels (limit {max_pixels})", source)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_image(path: str | Path, max_pixels: int = 400_000_000) -> np.ndarray:
    """Read an image file to (H, W, 3) uint8 RGB; raises :class:`ImageDecodeError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ImageDecodeError("file not found", str(path))
    return decode_image(path.read_bytes(), max_pixels, str(path))


def list_images(source: str | Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files named by ``source``: one file, a folder (sorted, non-recursive) or a glob pattern."""
    src = Path(source)
    if src.is_dir():
        files = sorted(p for p in src.iterdir() if p.suffix.lower() in extensions)
    elif src.is_file():
        files = [src]
    else:
        files = sorted(Path(p) for p in glob.glob(str(source)) if Path(p).suffix.lower() in extensions)
    if not files:
        raise FileNotFoundError(f"no images found at {source} (extensions: {', '.join(extensions)})")
    return files
