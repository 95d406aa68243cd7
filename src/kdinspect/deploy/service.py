"""HTTP service around an exported model (FastAPI): ``POST /predict``, ``GET /health``, ``GET /model``, a web page
at ``/``, and, with ``watch``, the latest results of a ``kdinspect stream --publish`` for the page's live view.

Limits: upload size (checked while the body arrives, before parsing), an idle timeout between body chunks, image
pixels (read from the header before decoding), and at most ``max_concurrent`` decodes / inferences / overlays at
once (each holds the decoded image: about 40 bytes per pixel at the peak); an optional API key (``X-API-Key``
header, or ``?key=`` for what a browser loads: the image endpoints and ``/docs``). Every bad request gets a 4xx
with a message that names the problem; the service keeps answering. ``/health`` is 503 ``degraded`` when the
``--watch`` thread is dead or stalled.
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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from kdinspect.deploy.imageio import ImageDecodeError, decode_image, read_image
from kdinspect.deploy.runtime import OrtModel
from kdinspect.deploy.stream import beside_reference, encode_jpeg, render
from kdinspect.deploy.uploads import ClientGone, Upload, check_pixels, upload_bytes
from kdinspect.deploy.watcher import StreamWatcher

__all__ = ["ServiceLimits", "StreamWatcher", "create_app"]

logger = logging.getLogger(__name__)


@dataclass
class ServiceLimits:
    """Upload limits.

    Attributes:
        max_bytes: largest request body.
        max_pixels: largest image (H * W), checked on the header before decoding (4096 x 4096 by default: with
            ``max_concurrent`` = 2, decoding and inference peak near 1.3 GB).
        max_concurrent: requests decoded / inferred / rendered at once; the others wait (up to ``queue_timeout_s``,
            then 503).
        queue_timeout_s: longest wait for a slot.
        read_timeout_s: an upload that sends no data for this long gets 408.
        upload_timeout_s: an upload not complete after this long gets 408 (a client trickling bytes).
    """

    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    max_concurrent: int = 2
    queue_timeout_s: float = 30.0
    read_timeout_s: float = 10.0
    upload_timeout_s: float = 60.0


class _Busy(Exception):
    pass


class _NoReference(Exception):
    """A reference-aware model got no reference (none uploaded, none registered), or a single-image model got one."""


def _status_for(err: ImageDecodeError) -> int:
    if "too large" in err.reason:
        return 413
    if err.reason.startswith(("empty", "not an image")):
        return 400 if err.reason.startswith("empty") else 415
    return 422


class _Predictor:
    """Header check -> (one of ``max_concurrent`` slots) decode -> infer (one at a time: the model already uses
    every core) -> JSON (+ overlay)."""

    def __init__(self, model: OrtModel, limits: ServiceLimits, reference: np.ndarray | None = None) -> None:
        self.model = model
        self.limits = limits
        self.reference = reference  # the registered golden image (serve --reference FILE), if any
        self.reference_name: str | None = None
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(max(1, limits.max_concurrent))
        self.requests = 0
        self.errors = 0

    def _check_reference(self, up: Upload) -> str:
        """Which reference the request uses: ``uploaded``, ``registered`` or ``none``."""
        if not self.model.info.reference:
            if up.reference is not None:
                raise _NoReference(f"{self.model.path.name} takes the image only; drop the 'reference' field")
            return "none"
        if up.reference is not None:
            return "uploaded"
        if self.reference is None:
            raise _NoReference(
                f"{self.model.path.name} compares each image with its defect-free reference: upload it in the "
                "multipart field 'reference', or start the service with --reference FILE"
            )
        return "registered"

    def __call__(self, up: Upload, overlay: bool) -> dict[str, Any]:
        t0 = time.perf_counter()
        name = up.name
        which = self._check_reference(up)
        check_pixels(up.data, self.limits.max_pixels, name)  # before waiting for a slot: refusing costs nothing
        if up.reference is not None:
            check_pixels(up.reference, self.limits.max_pixels, up.reference_name)
        if not self.slots.acquire(timeout=self.limits.queue_timeout_s):
            raise _Busy
        try:
            t_slot = time.perf_counter()
            image = decode_image(up.data, self.limits.max_pixels, name)
            reference = self.reference
            if up.reference is not None:
                reference = decode_image(up.reference, self.limits.max_pixels, up.reference_name)
            t1 = time.perf_counter()
            with self.lock:
                result = self.model.predict(image, reference) if which != "none" else self.model.predict(image)
                timing = dict(self.model.last_timing)
            out = result.to_json() | {"file": name}
            if which != "none":
                out["reference"] = {"source": which, "file": up.reference_name or self.reference_name}
            if overlay:
                vis = render(image, result, self.model.info.classes)
                if reference is not None:
                    vis = beside_reference(vis, reference)
                out["overlay_jpeg_base64"] = base64.b64encode(encode_jpeg(vis)).decode()
            del image, reference
        finally:
            self.slots.release()
        out["timing_ms"] = {
            "queue": round((t_slot - t0) * 1e3, 3),
            "decode": round((t1 - t_slot) * 1e3, 3),
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
    app: FastAPI,
    predictor: _Predictor,
    check_key: Callable[[Request], None],
    watcher: StreamWatcher | None,
    api_key_required: bool,
) -> None:
    model, limits, t_start = predictor.model, predictor.limits, time.time()

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return _page()

    @app.get("/health")
    def health() -> JSONResponse:
        body: dict[str, Any] = {
            "status": "ok",
            "model": model.info.model,
            "task": model.info.task,
            "uptime_s": round(time.time() - t_start, 1),
            "requests": predictor.requests,
            "errors": predictor.errors,
            "stream": watcher is not None,
        }
        if watcher is not None:
            body["watch"] = watcher.health()
            if not body["watch"]["ok"]:
                body["status"] = "degraded"
                return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    @app.get("/model")
    def model_info(request: Request) -> dict[str, Any]:
        check_key(request)
        applied = {"score_thr": model.score_thr} if model.info.task == "detection" else {"mask_thr": model.mask_thr}
        return model.info.to_json() | {
            # the thresholds /predict applies (the graph's own score_thr is a floor, kept as graph_score_thr)
            "graph_score_thr": model.info.score_thr,
            **applied,
            "file": model.path.name,
            "providers": model.providers,
            "limits": {
                "max_bytes": limits.max_bytes,
                "max_pixels": limits.max_pixels,
                "max_concurrent": limits.max_concurrent,
                "read_timeout_s": limits.read_timeout_s,
            },
            "api_key_required": api_key_required,
            # reference-aware models: a registered golden image (serve --reference) and/or one per upload
            "registered_reference": predictor.reference_name if model.info.reference else None,
        }

    @app.post("/predict")
    async def predict(request: Request, overlay: bool = False) -> Response:
        predictor.requests += 1
        try:
            check_key(request)
            up = await upload_bytes(request, limits.max_bytes, limits.read_timeout_s, limits.upload_timeout_s)
            try:
                return JSONResponse(await run_in_threadpool(predictor, up, overlay))
            except ImageDecodeError as err:
                raise HTTPException(_status_for(err), f"{err.source or up.name}: {err.reason}") from err
            except _NoReference as err:
                raise HTTPException(422, str(err)) from err
            except _Busy as err:
                raise HTTPException(
                    503, f"busy: {limits.max_concurrent} images in progress for {limits.queue_timeout_s:g} s"
                ) from err
        except HTTPException:
            predictor.errors += 1
            raise
        except ClientGone:
            predictor.errors += 1
            logger.info("%s: the client disconnected during the upload", request.client)
            return Response(status_code=400)


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
    reference: str | Path | None = None,
) -> FastAPI:
    """Build the FastAPI app.

    Args:
        model: an :class:`OrtModel` or the path of an exported model.
        api_key: required in ``X-API-Key`` (or ``?key=``) for every route but ``/`` and ``/health`` (``/docs``
            and ``/openapi.json`` included; open ``/docs?key=KEY`` in a browser).
        limits: upload limits.
        watch: ``tcp://HOST:PORT`` of a ``kdinspect stream --publish`` to show on the page (optional).
        watch_curve: CURVE client keys for ``watch``.
        threads: inference threads when ``model`` is a path.
        reference: reference-aware models (``info.reference``): the registered defect-free image (golden board)
            used for every upload that brings no reference of its own (multipart field ``reference``).
    """
    model = model if isinstance(model, OrtModel) else OrtModel(model, threads=threads)
    ref_image = None
    if reference is not None:
        if not model.info.reference:
            raise ValueError(f"{model.path} takes the image only; --reference is for reference-aware models")
        ref_image = read_image(reference)
    elif model.info.reference:
        logger.warning(
            "%s compares each image with a reference and none is registered (--reference FILE): every upload must "
            "carry its own in the multipart field 'reference'",
            model.path.name,
        )
    predictor = _Predictor(model, limits or ServiceLimits(), ref_image)
    predictor.reference_name = Path(reference).name if reference is not None else None
    watcher = StreamWatcher(watch, watch_curve) if watch else None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if watcher is not None:
            watcher.close()

    open_docs = not api_key  # with a key, /docs and /openapi.json need it too
    app = FastAPI(
        title="kdinspect",
        version=model.info.version or "0",
        docs_url="/docs" if open_docs else None,
        openapi_url="/openapi.json" if open_docs else None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.watcher = watcher

    @app.middleware("http")
    async def log_request(request: Request, call_next: Callable[[Request], Any]) -> Response:
        """One line per request: client, method, path, status, time (the query string, which may hold the key, is
        left out)."""
        t0 = time.perf_counter()
        response = await call_next(request)
        client = f"{request.client.host}" if request.client else "-"
        ms = (time.perf_counter() - t0) * 1e3
        logger.info("%s %s %s %d %.1f ms", client, request.method, request.url.path, response.status_code, ms)
        return response

    check_key = _key_checker(api_key)
    _add_core_routes(app, predictor, check_key, watcher, bool(api_key))
    _add_stream_routes(app, watcher, check_key)
    if not open_docs:
        _add_keyed_docs(app, check_key)
    return app


def _add_keyed_docs(app: FastAPI, check_key: Callable[[Request], None]) -> None:
    from fastapi.openapi.docs import get_swagger_ui_html

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(request: Request) -> JSONResponse:
        check_key(request)
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        check_key(request)
        key = request.query_params.get("key")
        url = "/openapi.json" + (f"?key={quote(key)}" if key else "")
        return get_swagger_ui_html(openapi_url=url, title="kdinspect - docs")
