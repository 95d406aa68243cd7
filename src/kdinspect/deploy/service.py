"""HTTP service around an exported model (FastAPI): ``POST /predict``, ``GET /health``, ``GET /model``, a web page
at ``/``, and, with ``watch``, the latest results of a ``kdinspect stream --publish`` for the page's live view.

Limits: upload size (checked while the body arrives, before parsing), image pixels (read from the header before
decoding); an optional API key (``X-API-Key`` header, or ``?key=`` for the image endpoints a browser loads). Every bad
request gets a 4xx with a message that names the problem; the service keeps answering.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import importlib.resources
import logging
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from kdinspect.deploy.imageio import ImageDecodeError, decode_image
from kdinspect.deploy.runtime import OrtModel
from kdinspect.deploy.stream import encode_jpeg, render

__all__ = ["ServiceLimits", "StreamWatcher", "create_app"]

logger = logging.getLogger(__name__)


@dataclass
class ServiceLimits:
    """Upload limits: ``max_bytes`` per request body, ``max_pixels`` per image (H * W)."""

    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000


class _TooLarge(Exception):
    pass


class StreamWatcher:
    """Subscribes to a result stream in a thread and keeps the newest frame for the web page."""

    def __init__(self, endpoint: str, curve: Any | None = None) -> None:
        from kdinspect.deploy.transport import ResultReceiver

        self.endpoint = endpoint
        self.curve = curve
        self.receiver = ResultReceiver(endpoint, curve, hwm=4)
        self.latest: tuple[dict[str, Any], bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from kdinspect.deploy.transport import ResultReceiver

        while not self._stop.is_set():
            msg = self.receiver.recv_latest(timeout=0.2)
            if msg is not None:
                self.latest = (msg.meta | {"latency_ms": round(msg.latency_ms, 3)}, msg.jpeg)
            elif self.receiver.stats.ended:  # that stream ended: wait for the next one with fresh counters
                self.receiver.close()
                self.receiver = ResultReceiver(self.endpoint, self.curve, hwm=4)

    def status(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            **self.receiver.stats.summary(),
            "latest": self.latest[0] if self.latest else None,
        }

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.receiver.close()


async def _read_body(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The request body, chunk by chunk, failing as soon as it exceeds ``limit`` bytes."""
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _TooLarge(total)
        yield chunk


async def _upload_bytes(request: Request, limits: ServiceLimits) -> tuple[bytes, str]:
    """Image bytes and their name from a multipart ``file`` field or a raw ``image/*`` body."""
    from starlette.formparsers import MultiPartException, MultiPartParser

    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limits.max_bytes:
        raise HTTPException(413, f"upload of {int(length)} bytes exceeds the limit of {limits.max_bytes} bytes")
    ctype = request.headers.get("content-type", "")
    try:
        if ctype.startswith("multipart/form-data"):
            parser = MultiPartParser(
                request.headers,
                _read_body(request, limits.max_bytes),
                max_files=1,
                max_fields=8,
                max_part_size=limits.max_bytes,
            )
            form = await parser.parse()
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise HTTPException(
                    422, f"expected the image in a multipart file field named 'file'; got fields {sorted(form.keys())}"
                )
            return await upload.read(), upload.filename or "file"
        if ctype.startswith(("image/", "application/octet-stream")):
            return b"".join([c async for c in _read_body(request, limits.max_bytes)]), "body"
    except _TooLarge as err:
        raise HTTPException(413, f"upload exceeds the limit of {limits.max_bytes} bytes") from err
    except MultiPartException as err:
        raise HTTPException(400, f"malformed multipart body: {err.message}") from err
    raise HTTPException(
        415,
        f"unsupported Content-Type {ctype!r}: send multipart/form-data with a 'file' field, "
        "or the raw image with Content-Type image/*",
    )


def _status_for(err: ImageDecodeError) -> int:
    if "too large" in err.reason:
        return 413
    if err.reason.startswith(("empty", "not an image")):
        return 400 if err.reason.startswith("empty") else 415
    return 422


class _Predictor:
    """Decode -> infer (one at a time: the model already uses every core) -> JSON (+ overlay)."""

    def __init__(self, model: OrtModel, limits: ServiceLimits) -> None:
        self.model = model
        self.limits = limits
        self.lock = threading.Lock()
        self.requests = 0
        self.errors = 0

    def __call__(self, data: bytes, name: str, overlay: bool) -> dict[str, Any]:
        t0 = time.perf_counter()
        image = decode_image(data, self.limits.max_pixels, name)
        t1 = time.perf_counter()
        with self.lock:
            result = self.model.predict(image)
            timing = dict(self.model.last_timing)
        out = result.to_json() | {"file": name}
        if overlay:
            jpeg = encode_jpeg(render(image, result, self.model.info.classes))
            out["overlay_jpeg_base64"] = base64.b64encode(jpeg).decode()
        out["timing_ms"] = {
            "decode": round((t1 - t0) * 1e3, 3),
            **{k.removesuffix("_ms"): round(v, 3) for k, v in timing.items()},
            "total": round((time.perf_counter() - t0) * 1e3, 3),
        }
        return out


def _page() -> str:
    return importlib.resources.files("kdinspect.deploy").joinpath("static/index.html").read_text()


def _key_checker(api_key: str | None) -> Callable[[Request], None]:
    def check_key(request: Request) -> None:
        if not api_key:
            return
        given = request.headers.get("x-api-key") or request.query_params.get("key") or ""
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise HTTPException(401, "missing or wrong API key (send it in the X-API-Key header)")

    return check_key


def _add_core_routes(
    app: FastAPI, predictor: _Predictor, check_key: Callable[[Request], None], stream: bool, api_key_required: bool
) -> None:
    model, limits, t_start = predictor.model, predictor.limits, time.time()

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return _page()

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": model.info.model,
            "task": model.info.task,
            "uptime_s": round(time.time() - t_start, 1),
            "requests": predictor.requests,
            "errors": predictor.errors,
            "stream": stream,
        }

    @app.get("/model")
    def model_info(request: Request) -> dict[str, Any]:
        check_key(request)
        return model.info.to_json() | {
            "file": model.path.name,
            "providers": model.providers,
            "limits": {"max_bytes": limits.max_bytes, "max_pixels": limits.max_pixels},
            "api_key_required": api_key_required,
        }

    @app.post("/predict")
    async def predict(request: Request, overlay: bool = False) -> JSONResponse:
        predictor.requests += 1
        try:
            check_key(request)
            data, name = await _upload_bytes(request, limits)
            try:
                return JSONResponse(await run_in_threadpool(predictor, data, name, overlay))
            except ImageDecodeError as err:
                raise HTTPException(_status_for(err), f"{name}: {err.reason}") from err
        except HTTPException:
            predictor.errors += 1
            raise


def _add_stream_routes(app: FastAPI, watcher: StreamWatcher | None, check_key: Callable[[Request], None]) -> None:
    def need_watcher(request: Request) -> StreamWatcher:
        check_key(request)
        if watcher is None:
            raise HTTPException(404, "no stream is watched: start the service with --watch tcp://HOST:PORT")
        return watcher

    @app.get("/stream/latest")
    def stream_latest(request: Request) -> dict[str, Any]:
        return need_watcher(request).status()

    @app.get("/stream/latest.jpg")
    def stream_latest_jpg(request: Request) -> Response:
        w = need_watcher(request)
        if w.latest is None or not w.latest[1]:
            raise HTTPException(404, f"no frame received from {w.endpoint} yet")
        return Response(w.latest[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/stream.mjpg")
    def stream_mjpeg(request: Request) -> StreamingResponse:
        w = need_watcher(request)

        async def frames() -> AsyncIterator[bytes]:
            last = None
            while True:
                latest = w.latest
                if latest is not None and latest[0].get("seq") != last and latest[1]:
                    last = latest[0].get("seq")
                    yield b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + latest[1] + b"\r\n"
                await asyncio.sleep(0.02)

        return StreamingResponse(frames(), media_type="multipart/x-mixed-replace; boundary=frame")


def create_app(
    model: OrtModel | str | Path,
    api_key: str | None = None,
    limits: ServiceLimits | None = None,
    watch: str | None = None,
    watch_curve: Any | None = None,
    threads: int | None = None,
) -> FastAPI:
    """Build the FastAPI app.

    Args:
        model: an :class:`OrtModel` or the path of an exported model.
        api_key: required in ``X-API-Key`` (or ``?key=``) for every route but ``/`` and ``/health``.
        limits: upload limits.
        watch: ``tcp://HOST:PORT`` of a ``kdinspect stream --publish`` to show on the page (optional).
        watch_curve: CURVE client keys for ``watch``.
        threads: inference threads when ``model`` is a path.
    """
    model = model if isinstance(model, OrtModel) else OrtModel(model, threads=threads)
    predictor = _Predictor(model, limits or ServiceLimits())
    watcher = StreamWatcher(watch, watch_curve) if watch else None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if watcher is not None:
            watcher.close()

    app = FastAPI(
        title="kdinspect", version=model.info.version or "0", docs_url="/docs", redoc_url=None, lifespan=lifespan
    )
    check_key = _key_checker(api_key)
    _add_core_routes(app, predictor, check_key, watcher is not None, bool(api_key))
    _add_stream_routes(app, watcher, check_key)
    return app
