"""The live loop: newest frame -> model -> overlay -> publish / record / show, with per-frame latency statistics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kdinspect.deploy.draw import Window, draw_detections, overlay_mask
from kdinspect.deploy.postprocess import DetectionResult, SegmentationResult
from kdinspect.deploy.runtime import OrtModel, Result
from kdinspect.deploy.samples import Reservoir
from kdinspect.deploy.signals import stop_reason
from kdinspect.deploy.sources import FrameSource

__all__ = ["StreamStats", "encode_jpeg", "render", "run_stream"]

logger = logging.getLogger(__name__)


def render(image: np.ndarray, result: Result, classes: list[str]) -> np.ndarray:
    """Overlay of ``result`` on the (H, W, 3) uint8 RGB ``image`` (boxes, or the tinted defect mask)."""
    if isinstance(result, DetectionResult):
        return draw_detections(image, result.boxes, result.scores, result.labels, classes)
    assert isinstance(result, SegmentationResult)
    return overlay_mask(image, result.prob, result.threshold)


def beside_reference(overlay: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The reference (scaled to the overlay's height) to the left of the overlay, a white gap between: what a
    reference-aware model compared the image with, next to what it found."""
    h = overlay.shape[0]
    scale = h / reference.shape[0]
    ref = cv2.resize(reference, (max(1, round(reference.shape[1] * scale)), h), interpolation=cv2.INTER_AREA)
    gap = np.full((h, 6, 3), 255, np.uint8)
    return np.concatenate([ref, gap, overlay], axis=1)


def encode_jpeg(rgb: np.ndarray, quality: int = 80) -> bytes:
    """JPEG bytes of an RGB image."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {rgb.shape}")
    return buf.tobytes()


@dataclass
class StreamStats:
    """What a stream run did. Latency is capture -> results ready (and published), per processed frame (bounded
    samples: :class:`~kdinspect.deploy.samples.Reservoir`).
    ``sent_to_socket``: frames the publisher queued (not a delivery count: see the publisher's ``acknowledged``);
    ``publish_dropped``: frames it did not send."""

    processed: int = 0
    sent_to_socket: int = 0
    publish_dropped: int = 0
    stopped_by: str | None = None
    latency_ms: Reservoir = field(default_factory=Reservoir)
    inference_ms: Reservoir = field(default_factory=Reservoir)
    t_start: float = field(default_factory=time.perf_counter)
    t_end: float = 0.0

    def summary(self, source: FrameSource | None = None) -> dict[str, Any]:
        wall = max(1e-9, (self.t_end or time.perf_counter()) - self.t_start)
        out: dict[str, Any] = {
            "processed": self.processed,
            "wall_s": round(wall, 3),
            "fps": round(self.processed / wall, 2),
            "latency_ms_p50": self.latency_ms.median(),
            "latency_ms_p99": self.latency_ms.percentile(0.99),
            "latency_ms_max": self.latency_ms.maximum(),
            "inference_ms_p50": self.inference_ms.median(),
            "sent_to_socket": self.sent_to_socket,
            "publish_dropped": self.publish_dropped,
            "stopped_by": self.stopped_by,
        }
        if source is not None:
            out |= {"source_captured": source.captured, "source_dropped": source.dropped}
        return out


def run_stream(
    model: OrtModel,
    source: FrameSource,
    publisher: Any | None = None,
    record: str | Path | None = None,
    show: bool = False,
    max_frames: int | None = None,
    duration: float | None = None,
    jpeg_quality: int = 80,
    on_frame: Callable[[dict[str, Any], bytes], None] | None = None,
    reference: np.ndarray | None = None,
) -> dict[str, Any]:
    """Process frames until the source ends, ``max_frames`` or ``duration`` (s) is reached, or Ctrl-C (or SIGTERM,
    under :func:`kdinspect.deploy.signals.sigterm_interrupts`).

    Args:
        model: the exported model.
        source: frames (the newest one is always taken).
        publisher: a :class:`kdinspect.deploy.transport.ResultPublisher` (or anything with ``publish(meta, jpeg)``).
        record: write the overlays to this video file (mp4v).
        show: show the overlays in a local window.
        max_frames: stop after this many processed frames.
        duration: stop after this many seconds.
        jpeg_quality: JPEG quality of the published overlay.
        on_frame: called with (meta, jpeg) for every processed frame.
        reference: reference-aware models: the (H, W, 3) RGB defect-free image every frame is compared with
            (registered onto each frame by the model's ``align``).

    Returns:
        :meth:`StreamStats.summary` plus the source's captured / dropped counts.
    """
    stats = StreamStats()
    window = Window(f"kdinspect: {source.spec}") if show else None
    writer: cv2.VideoWriter | None = None
    deadline = None if duration is None else time.perf_counter() + duration
    try:
        while (max_frames is None or stats.processed < max_frames) and (
            deadline is None or time.perf_counter() < deadline
        ):
            frame = source.get(timeout=0.5)
            if frame is None:
                if source.finished:
                    break
                continue
            result = model.predict(frame.image) if reference is None else model.predict(frame.image, reference)
            stats.processed += 1  # before publishing: a receiver never sees a frame the summary does not count
            stats.inference_ms.add(model.last_timing.get("inference_ms", 0.0))
            meta = {
                "frame": frame.index,
                "t_capture": frame.t_capture,
                "source_dropped": source.dropped,
                "model": model.info.model,
                "timing": {k: round(v, 3) for k, v in model.last_timing.items()},
                "result": result.to_json(),
            }
            jpeg = b""
            if publisher is not None or record or window or on_frame:
                vis = render(frame.image, result, model.info.classes)
                if publisher is not None or on_frame:
                    jpeg = encode_jpeg(vis, jpeg_quality)
                if record:
                    writer = writer or _open_writer(record, vis.shape, source.fps)
                    writer.write(cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
                if window is not None and not window.show(vis):
                    break
            if publisher is not None:
                if publisher.publish(meta, jpeg):
                    stats.sent_to_socket += 1
                else:
                    stats.publish_dropped += 1
            if on_frame is not None:
                on_frame(meta, jpeg)
            stats.latency_ms.add((time.time() - frame.t_capture) * 1e3)
    except KeyboardInterrupt as err:
        stats.stopped_by = stop_reason(err)
        logger.info("stopped by %s", stats.stopped_by)
    finally:
        stats.t_end = time.perf_counter()
        if writer is not None:
            writer.release()
        if window is not None:
            window.close()
    summary = stats.summary(source)
    logger.info("stream: %s", summary)
    return summary


def _open_writer(path: str | Path, shape: tuple[int, ...], fps: float) -> cv2.VideoWriter:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (shape[1], shape[0]))
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV could not open a video writer (try a .mp4 or .avi name)")
    return writer
