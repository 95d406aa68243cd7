"""Reading an upload for the HTTP service: size limit while the body arrives, an idle timeout between chunks, a
quiet end for clients that leave mid-upload, and the image size from the header before any decoding."""

from __future__ import annotations

import asyncio
import io
import warnings
from collections.abc import AsyncGenerator
from typing import NamedTuple

from fastapi import HTTPException, Request
from starlette.requests import ClientDisconnect

from kdinspect.deploy.imageio import ImageDecodeError, image_header_size

__all__ = ["ClientGone", "Upload", "check_pixels", "upload_bytes"]


class ClientGone(Exception):
    """The client closed the connection before its upload was complete (nothing to answer)."""


class _TooLarge(Exception):
    pass


class _Stalled(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


async def _read_body(request: Request, limit: int, idle_s: float, total_s: float) -> AsyncGenerator[bytes, None]:
    """The request body, chunk by chunk, failing as soon as it exceeds ``limit`` bytes, no chunk arrives for
    ``idle_s`` seconds, or the whole body has not arrived after ``total_s`` seconds."""
    total = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total_s
    chunks = request.stream().__aiter__()
    while True:
        left = deadline - loop.time()
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), max(0.0, min(idle_s, left)))
        except StopAsyncIteration:
            return
        except TimeoutError:
            if left <= idle_s:
                raise _Stalled(f"upload too slow: not complete after {total_s:g} s") from None
            raise _Stalled(f"upload stalled: no data for {idle_s:g} s") from None
        total += len(chunk)
        if total > limit:
            raise _TooLarge(total)
        yield chunk


class Upload(NamedTuple):
    """An uploaded image (and, for reference-aware models, its reference from the multipart field ``reference``)."""

    data: bytes
    name: str
    reference: bytes | None = None
    reference_name: str = ""


async def upload_bytes(request: Request, max_bytes: int, idle_s: float, total_s: float) -> Upload:
    """Image bytes and their name from a multipart ``file`` field or a raw ``image/*`` body; a multipart upload
    may carry the image's defect-free reference in a second file field, ``reference``. ``max_bytes`` bounds the
    whole body.

    Raises:
        HTTPException: 413 too large, 408 stalled or too slow, 400 malformed multipart, 415 wrong Content-Type,
            422 no file.
        ClientGone: the client disconnected mid-upload.
    """
    from starlette.formparsers import MultiPartException, MultiPartParser

    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise HTTPException(413, f"upload of {int(length)} bytes exceeds the limit of {max_bytes} bytes")
    ctype = request.headers.get("content-type", "")
    try:
        if ctype.startswith("multipart/form-data"):
            parser = MultiPartParser(
                request.headers,
                _read_body(request, max_bytes, idle_s, total_s),
                max_files=2,
                max_fields=8,
                max_part_size=max_bytes,
            )
            form = await parser.parse()
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise HTTPException(
                    422, f"expected the image in a multipart file field named 'file'; got fields {sorted(form.keys())}"
                )
            ref = form.get("reference")
            if isinstance(ref, str):
                raise HTTPException(422, "the multipart field 'reference' must be a file (the reference image)")
            if ref is None:
                return Upload(await upload.read(), upload.filename or "file")
            return Upload(await upload.read(), upload.filename or "file", await ref.read(), ref.filename or "reference")
        if ctype.startswith(("image/", "application/octet-stream")):
            return Upload(b"".join([c async for c in _read_body(request, max_bytes, idle_s, total_s)]), "body")
    except _TooLarge as err:
        raise HTTPException(413, f"upload exceeds the limit of {max_bytes} bytes") from err
    except _Stalled as err:
        raise HTTPException(408, err.message) from err
    except ClientDisconnect as err:
        raise ClientGone from err
    except MultiPartException as err:
        raise HTTPException(400, f"malformed multipart body: {err.message}") from err
    raise HTTPException(
        415,
        f"unsupported Content-Type {ctype!r}: send multipart/form-data with a 'file' field, "
        "or the raw image with Content-Type image/*",
    )


def check_pixels(data: bytes, max_pixels: int, name: str) -> None:
    """Refuse an image whose header says it is larger than ``max_pixels``, without decoding it. JPEG, PNG, BMP and
    extended WebP sizes come from :func:`image_header_size`; other formats (TIFF, simple WebP) from PIL's lazy
    ``Image.open``, which reads the header only."""
    fmt, size = image_header_size(data)
    if size is None and fmt != "unknown":
        size = _pil_size(data, max_pixels, name)
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageDecodeError(
            f"image too large: {size[1]}x{size[0]} = {size[0] * size[1]} pixels (limit {max_pixels}); "
            "refused before decoding",
            name,
        )


def _pil_size(data: bytes, max_pixels: int, name: str) -> tuple[int, int] | None:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
    except Image.DecompressionBombError as err:
        raise ImageDecodeError(f"image too large ({err}; limit {max_pixels} pixels)", name) from None
    except Exception:  # not readable by PIL: decode_image gives the error
        return None
    return int(h), int(w)
