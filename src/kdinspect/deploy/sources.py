"""Frame sources for live inference: camera index, video file, RTSP/HTTP URL or image folder.

A background thread reads frames as fast as the source delivers them and keeps only the newest one: when the
consumer (the model) is slower than the source, stale frames are dropped and counted instead of queueing up, so
latency never builds up (the RTSP "lag grows from 0.4 s to 1.3 s" problem). ``every_frame=True`` switches to a
bounded queue that blocks the reader instead, for offline processing of files where every frame matters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kdinspect.deploy.imageio import IMAGE_EXTENSIONS, ImageDecodeError, read_image

__all__ = ["Frame", "FrameSource", "open_source"]

logger = logging.getLogger(__name__)


@dataclass
class Frame:
    """One captured frame. image: (H, W, 3) uint8 RGB; t_capture: ``time.time()`` when it was read."""

    image: np.ndarray
    index: int
    t_capture: float


class _Reader:
    """Yields RGB frames from a cv2.VideoCapture or an image folder; ``None`` at the end."""

    def __init__(self, spec: str, fps: float | None) -> None:
        self.files: list[Path] | None = None
        self.cap: cv2.VideoCapture | None = None
        self.live = False
        path = Path(spec)
        if spec.isdigit():
            self.cap = cv2.VideoCapture(int(spec))
            self.live = True
        elif "://" in spec:
            self.cap = cv2.VideoCapture(spec, cv2.CAP_FFMPEG)
            self.live = True
        elif path.is_dir():
            self.files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not self.files:
                raise FileNotFoundError(f"{spec}: no images in this folder (extensions: {', '.join(IMAGE_EXTENSIONS)})")
        elif path.is_file():
            self.cap = cv2.VideoCapture(str(path))
        else:
            raise FileNotFoundError(f"{spec}: not a camera index, URL, video file or image folder")
        if self.cap is not None:
            if not self.cap.isOpened():
                raise OSError(f"{spec}: OpenCV could not open this source")
            self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        native = self.cap.get(cv2.CAP_PROP_FPS) if self.cap is not None else 0.0
        self.fps = fps or (native if native and native > 0 else 10.0)
        frames = self.cap.get(cv2.CAP_PROP_FRAME_COUNT) if self.cap is not None else 0
        self.count = len(self.files) if self.files is not None else int(frames or 0)
        self._i = 0

    def read(self) -> np.ndarray | None:
        if self.files is not None:
            while self._i < len(self.files):
                path = self.files[self._i]
                self._i += 1
                try:
                    return read_image(path)
                except ImageDecodeError as err:
                    logger.warning("skipping unreadable frame %s", err)
            return None
        assert self.cap is not None
        ok, frame = self.cap.read()
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if ok else None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()


class FrameSource:
    """Threaded reader that hands out the newest frame (or every frame, in order, with ``every_frame``).

    Args:
        spec: camera index (``0``), video file, ``rtsp://``/``http://`` URL, or image folder.
        every_frame: never drop: the reader waits for the consumer (files only make sense here).
        realtime: pace files at ``fps`` like a camera would (default: on unless ``every_frame``); live sources are
            always real time.
        fps: frame rate for pacing folders and files (default: the video's own, 10 for folders).
        loop: restart files and folders at the end (for demos and soak runs).
        reconnect: live sources (camera, URL): reopen this many times, ``reconnect_delay`` s apart, after the
            stream breaks (a camera unplugged, an RTSP server restarted) before ending; -1 = forever.
        reconnect_delay: seconds between reconnection attempts.
    """

    def __init__(
        self,
        spec: str | int,
        every_frame: bool = False,
        realtime: bool | None = None,
        fps: float | None = None,
        loop: bool = False,
        reconnect: int = 10,
        reconnect_delay: float = 1.0,
    ) -> None:
        self.spec = str(spec)
        self.reconnect = reconnect
        self.reconnect_delay = reconnect_delay
        self.reconnects = 0
        self.reader = _Reader(self.spec, fps)
        self.every_frame = every_frame
        self.realtime = (not every_frame) if realtime is None else realtime
        self.loop = loop
        self.captured = 0
        self.dropped = 0
        self._buf: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)
        self._thread.start()

    @property
    def fps(self) -> float:
        return self.reader.fps

    def _next_image(self) -> np.ndarray | None:
        img = self.reader.read()
        if img is None and self.loop and not self.reader.live:
            self.reader.close()
            self.reader = _Reader(self.spec, self.reader.fps)
            img = self.reader.read()
        attempts = 0
        while img is None and self.reader.live and (self.reconnect < 0 or attempts < self.reconnect):
            if self._stop.wait(self.reconnect_delay):
                return None
            attempts += 1
            logger.warning("%s: no frame, reconnecting (attempt %d)", self.spec, attempts)
            self.reader.close()
            try:
                self.reader = _Reader(self.spec, self.reader.fps)
            except OSError as err:
                logger.warning("%s: %s", self.spec, err)
                continue
            self.reconnects += 1
            img = self.reader.read()
        return img

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            while not self._stop.is_set():
                if self.realtime and not self.reader.live:  # pace files like a camera
                    delay = t0 + self.captured / self.reader.fps - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                img = self._next_image()
                if img is None:
                    break
                self._put(Frame(img, self.captured, time.time()))
        except Exception:
            logger.exception("frame reader of %s failed", self.spec)
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self.every_frame:
                while len(self._buf) >= 4 and not self._stop.is_set():
                    self._cond.wait(0.1)
            elif self._buf:
                self._buf.clear()  # the unconsumed frame is stale now
                self.dropped += 1
            self._buf.append(frame)
            self.captured += 1
            self._cond.notify_all()

    @property
    def finished(self) -> bool:
        """The source has ended and every frame was handed out."""
        with self._cond:
            return self._done and not self._buf

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest unconsumed frame (the next one with ``every_frame``); None at the end or on timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._buf or self._done, timeout):
                return None
            if not self._buf:
                return None
            frame = self._buf.popleft()
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self.reader.close()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(spec: str | int, **options: Any) -> FrameSource:
    """Open a :class:`FrameSource`; ``options`` are its keyword arguments (``every_frame``, ``fps``, ``loop``, ...)."""
    return FrameSource(spec, **options)
