"""``kdinspect serve``: HTTP service with a web page (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

NAME = "serve"
HELP = "serve an exported model over HTTP: POST /predict, GET /health, /model, and a web page at /"

logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="exported .onnx (or OpenVINO .xml)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--api-key-file",
        default=None,
        metavar="FILE",
        help="require the key in this file in X-API-Key (default: $KDINSPECT_API_KEY; neither = open)",
    )
    p.add_argument(
        "--api-key",
        default=None,
        help="the key itself: visible to every user in the process list, prefer $KDINSPECT_API_KEY or --api-key-file",
    )
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest request body")
    p.add_argument(
        "--max-pixels",
        type=int,
        default=4096 * 4096,
        help="largest image (H*W, read from the header before decoding; default 4096x4096)",
    )
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=2,
        help="images decoded / inferred at once (each needs about 40 bytes per pixel at the peak); others wait",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="close connections that send nothing for S seconds (before a request, or mid-upload: 408)",
    )
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: all cores)")
    p.add_argument(
        "--reference",
        default=None,
        metavar="FILE",
        help="reference-aware models (docs/template.md): the registered defect-free image (golden board) for every "
        "upload that brings none of its own (multipart field 'reference')",
    )
    p.add_argument(
        "--watch",
        default=None,
        metavar="tcp://HOST:PORT",
        help="show the results of a 'kdinspect stream --publish' on the page",
    )
    p.add_argument("--curve-server-key", default=None, help="CURVE for --watch: the sender's server.key")
    p.add_argument("--curve-secret", default=None, help="CURVE for --watch: this side's client.key_secret")


def _api_key(args: argparse.Namespace) -> str | None:
    if args.api_key:
        logger.warning(
            "--api-key puts the key in the process list (ps) for every user of this machine; "
            "prefer KDINSPECT_API_KEY=... or --api-key-file"
        )
        return str(args.api_key)
    if args.api_key_file:
        path = Path(args.api_key_file)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: API key file not found")
        key = path.read_text().strip()
        if not key:
            raise ValueError(f"{path}: the API key file is empty")
        return key
    return os.environ.get("KDINSPECT_API_KEY") or None


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from kdinspect.deploy import service
    from kdinspect.deploy.httpserver import server_config
    from kdinspect.deploy.transport import CurveClient

    curve = None
    if args.curve_server_key and args.curve_secret:
        curve = CurveClient(Path(args.curve_server_key), Path(args.curve_secret))
    api_key = _api_key(args)
    limits = service.ServiceLimits(
        int(args.max_upload_mb * 1024 * 1024),
        args.max_pixels,
        max_concurrent=args.max_concurrent,
        read_timeout_s=args.idle_timeout,
    )
    app = service.create_app(args.model, api_key, limits, args.watch, curve, args.threads, args.reference)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        logger.warning("serving on %s without an API key: anyone who can reach it can use it", args.host)
    host = f"[{args.host}]" if ":" in args.host else args.host
    logger.info(
        "serving %s at http://%s:%d/ (web page; API: POST /predict, GET /model, GET /health, docs /docs); Ctrl-C stops",
        args.model,
        host,
        args.port,
    )
    uvicorn.Server(server_config(app, args.host, args.port, idle_timeout=args.idle_timeout)).run()
    return 0
