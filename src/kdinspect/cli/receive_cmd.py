"""``kdinspect receive``: the remote-PC side of ``kdinspect stream --publish``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "receive"
HELP = "receive a stream's results over ZeroMQ: show or save frames, log JSON lines, report drops and latency"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--connect", required=True, metavar="tcp://HOST:PORT | PORT", help="address of 'kdinspect stream --publish'"
    )
    p.add_argument("--show", action="store_true", help="show frames in a window (needs OpenCV with GUI support)")
    p.add_argument("--save", default=None, metavar="DIR", help="save every received JPEG overlay here")
    p.add_argument("--log", default=None, metavar="FILE", help="append each frame's metadata as a JSON line")
    p.add_argument("--count", type=int, default=None, help="stop after N frames")
    p.add_argument("--timeout", type=float, default=None, help="stop after S seconds without a frame")
    p.add_argument(
        "--summary", default=None, metavar="FILE", help="write the final statistics as JSON (also on Ctrl-C or SIGTERM)"
    )
    p.add_argument("--curve-server-key", default=None, help="CURVE: the sender's server.key (public)")
    p.add_argument("--curve-secret", default=None, help="CURVE: this receiver's client.key_secret")


def run(args: argparse.Namespace) -> int:
    from kdinspect.deploy.receive import receive_stream
    from kdinspect.deploy.signals import sigterm_interrupts
    from kdinspect.deploy.transport import CurveClient

    curve = None
    if args.curve_server_key or args.curve_secret:
        if not (args.curve_server_key and args.curve_secret):
            raise ValueError("CURVE needs both --curve-server-key and --curve-secret")
        curve = CurveClient(Path(args.curve_server_key), Path(args.curve_secret))
    with sigterm_interrupts():
        summary = receive_stream(
            args.connect, curve, args.show, args.save, args.log, args.count, args.timeout, args.summary
        )
    print(json.dumps(summary))
    return 0
