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
        "--api-key",
        default=os.environ.get("KDINSPECT_API_KEY"),
        help="require this key in X-API-Key (default: $KDINSPECT_API_KEY; none = open)",
    )
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest request body")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="largest image (H*W, read from the header)")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: all cores)")
    p.add_argument(
        "--watch",
        default=None,
        metavar="tcp://HOST:PORT",
        help="show the results of a 'kdinspect stream --publish' on the page",
    )
    p.add_argument("--curve-server-key", default=None, help="CURVE for --watch: the sender's server.key")
    p.add_argument("--curve-secret", default=None, help="CURVE for --watch: this side's client.key_secret")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from kdinspect.deploy.service import ServiceLimits, create_app
    from kdinspect.deploy.transport import CurveClient

    curve = None
    if args.curve_server_key and args.curve_secret:
        curve = CurveClient(Path(args.curve_server_key), Path(args.curve_secret))
    limits = ServiceLimits(int(args.max_upload_mb * 1024 * 1024), args.max_pixels)
    app = create_app(args.model, args.api_key, limits, args.watch, curve, args.threads)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        logger.warning("serving on %s without an API key: anyone who can reach it can use it", args.host)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
