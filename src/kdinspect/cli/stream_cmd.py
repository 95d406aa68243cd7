"""``kdinspect stream``: live inference on a camera, video, RTSP URL or folder; results published over ZeroMQ."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "stream"
HELP = "run an exported model on a live source (newest frame wins); show, record and/or publish results"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="exported .onnx (or OpenVINO .xml)")
    p.add_argument("--source", required=True, help="camera index, video file, rtsp:// or http:// URL, image folder")
    p.add_argument(
        "--publish",
        default=None,
        metavar="tcp://HOST:PORT | PORT",
        help="publish results over ZeroMQ PUB at this bind address (a bare PORT binds 127.0.0.1 only)",
    )
    p.add_argument(
        "--reliable",
        action="store_true",
        help="wait for slow receivers (bounded by --send-timeout) instead of dropping frames; receivers acknowledge",
    )
    p.add_argument(
        "--send-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="--reliable: how long a frame may wait for the receiver (or for one to subscribe) before it is counted "
        "as not sent",
    )
    p.add_argument(
        "--wait-subscriber",
        type=float,
        default=0.0,
        metavar="S",
        help="wait up to S seconds for a receiver before starting",
    )
    p.add_argument("--curve-secret", default=None, help="CURVE: the sender's server.key_secret (from 'kdinspect keys')")
    p.add_argument("--curve-clients", default=None, help="CURVE: folder of authorised client public keys")
    p.add_argument("--show", action="store_true", help="show the overlays in a local window")
    p.add_argument("--record", default=None, help="write the overlays to a video file")
    p.add_argument("--every-frame", action="store_true", help="process every frame of files (no dropping)")
    p.add_argument("--fps", type=float, default=None, help="pacing of files/folders (default: the video's own)")
    p.add_argument("--loop", action="store_true", help="restart files and folders at the end")
    p.add_argument(
        "--reconnect", type=int, default=10, help="cameras/URLs: reopen attempts after a break (-1 = forever)"
    )
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: all cores)")
    p.add_argument("--conf", type=float, default=None, help="detection score threshold (default: from export)")
    p.add_argument(
        "--mask-thr",
        type=float,
        default=None,
        help="segmentation threshold (default: the model's stored one, else 0.5)",
    )
    p.add_argument("--jpeg-quality", type=int, default=80)
    p.add_argument(
        "--reference",
        default=None,
        metavar="FILE",
        help="reference-aware models (docs/template.md): the defect-free image every frame is compared with "
        "(registered onto each frame as the model was exported: kdinspect.align)",
    )


def run(args: argparse.Namespace) -> int:
    from kdinspect.deploy.imageio import read_image
    from kdinspect.deploy.runtime import OrtModel
    from kdinspect.deploy.signals import sigterm_interrupts
    from kdinspect.deploy.sources import open_source
    from kdinspect.deploy.stream import run_stream
    from kdinspect.deploy.transport import CurveServer, ResultPublisher

    model = OrtModel(args.model, threads=args.threads, score_thr=args.conf, mask_thr=args.mask_thr)
    if model.info.reference != (args.reference is not None):
        need = "compares each frame with a reference: pass --reference FILE"
        raise ValueError(
            f"{args.model} " + (need if args.reference is None else "takes the frame only; drop --reference")
        )
    reference = read_image(args.reference) if args.reference is not None else None
    publisher = None
    if args.publish:
        curve = None
        if args.curve_secret:
            curve = CurveServer(Path(args.curve_secret), Path(args.curve_clients) if args.curve_clients else None)
        publisher = ResultPublisher(args.publish, reliable=args.reliable, curve=curve, send_timeout=args.send_timeout)
        if args.wait_subscriber and not publisher.wait_for_subscriber(args.wait_subscriber):
            publisher.close(0.1)
            raise TimeoutError(f"no receiver subscribed to {args.publish} within {args.wait_subscriber} s")
    source = open_source(
        args.source, every_frame=args.every_frame, fps=args.fps, loop=args.loop, reconnect=args.reconnect
    )
    try:
        with sigterm_interrupts():
            summary = run_stream(
                model,
                source,
                publisher,
                args.record,
                args.show,
                args.max_frames,
                args.duration,
                args.jpeg_quality,
                reference=reference,
            )
    finally:
        source.close()
        report = publisher.close() if publisher is not None else {}
    if report:  # the publisher's own counts (authoritative even when a signal landed mid-frame)
        summary |= {"sent_to_socket": report["sent_to_socket"], "publish_dropped": report["not_sent"]}
        summary |= {k: report[k] for k in ("acknowledged", "unconfirmed", "receivers_acknowledging")}
    print(json.dumps(summary))
    return 0
