"""Deployment runtime: numpy + OpenCV + onnxruntime only (never torch or training code).

- :class:`OrtModel`: an exported model, ``predict(rgb_image) -> DetectionResult | SegmentationResult``.
- ``kdinspect.deploy.stream``: live sources (newest frame wins), the stream loop and its statistics.
- ``kdinspect.deploy.transport``: ZeroMQ XPUB/XSUB of per-frame results (JSON + JPEG parts, optional CURVE:
  ``curve``); ``wire``: the message format and the checks on every message; ``receiver``: the receiving end.
- ``kdinspect.deploy.service``: the FastAPI HTTP service and its web page (``uploads``: reading uploads,
  ``watcher``: ``--watch``, ``httpserver``: the uvicorn server with idle timeouts).
"""

from kdinspect.deploy.imageio import ImageDecodeError, decode_image, read_image
from kdinspect.deploy.postprocess import DetectionResult, SegmentationResult
from kdinspect.deploy.runtime import ModelInfo, OrtModel

__all__ = [
    "DetectionResult",
    "ImageDecodeError",
    "ModelInfo",
    "OrtModel",
    "SegmentationResult",
    "decode_image",
    "read_image",
]
