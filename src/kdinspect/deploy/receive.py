"""The receiving side of a result stream: show / save frames, JSON-lines log, drop and latency report."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from kdinspect.deploy.draw import Window
from kdinspect.deploy.imageio import ImageDecodeError, decode_image
from kdinspect.deploy.signals import stop_reason
from kdinspect.deploy.transport import CurveClient, Message, ResultReceiver

__all__ = ["receive_stream"]

logger = logging.getLogger(__name__)

SHOW_MAX_PIXELS = 40_000_000


def receive_stream(
    endpoint: str,
    curve: CurveClient | None = None,
    show: bool = False,
    save_dir: str | Path | None = None,
    log_path: str | Path | None = None,
    count: int | None = None,
    timeout: float | None = None,
    summary_path: str | Path | None = None,
) -> dict[str, Any]:
    """Receive until the stream ends, ``count`` frames arrived, ``timeout`` s pass without a frame, or Ctrl-C (or
    SIGTERM, under :func:`kdinspect.deploy.signals.sigterm_interrupts`). Malformed messages are counted and skipped.

    Args:
        summary_path: write the summary here as JSON (atomically), however the loop ends, errors included.

    Returns:
        :meth:`ReceiverStats.summary`: received, dropped (sequence gaps), skipped_stale (received while showing a
        newer frame), published (from the end message), rejected (by reason), stopped_by, latency percentiles
        (capture on the sender -> received here; across machines this needs synchronised clocks).
    """
    window = Window(f"kdinspect: {endpoint}") if show else None
    receiver = ResultReceiver(endpoint, curve)
    save = Path(save_dir) if save_dir else None
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "a") if log_path else None  # noqa: SIM115 - closed in finally

    def record(msg: Message) -> None:  # every received frame, shown or not
        if log is not None:
            lat = None if msg.latency_ms is None else round(msg.latency_ms, 3)
            log.write(json.dumps(msg.meta | {"latency_ms": lat}) + "\n")
        if save is not None and msg.jpeg:
            (save / f"{msg.meta['seq']:08d}.jpg").write_bytes(msg.jpeg)

    try:
        while count is None or receiver.stats.received < count:
            msg = receiver.recv_latest(timeout, record)  # the newest frame: no latency build-up on the display
            if msg is None:
                break  # end of stream or idle timeout
            if window is not None and msg.jpeg:
                try:  # header checked before decoding: a bogus 60000x60000 JPEG part allocates nothing
                    rgb = decode_image(msg.jpeg, SHOW_MAX_PIXELS, f"frame {msg.meta['seq']}")
                except ImageDecodeError as err:
                    logger.warning("%s: the JPEG part is not shown", err)
                    continue
                if not window.show(rgb):
                    break
    except KeyboardInterrupt as err:
        receiver.stats.stopped_by = stop_reason(err)
        logger.info("stopped by %s", receiver.stats.stopped_by)
    finally:
        if log is not None:
            log.close()
        if window is not None:
            window.close()
        receiver.close()
        summary = receiver.stats.summary()
        if summary_path is not None:
            _write_json(Path(summary_path), summary)
    logger.info("received: %s", summary)
    return summary


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
