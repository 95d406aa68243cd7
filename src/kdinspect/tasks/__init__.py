"""Tasks: what the trainer drives (loss dicts in training, per-image predictions in evaluation)."""

from kdinspect.tasks.base import Detections, SegPrediction, Task
from kdinspect.tasks.detection import DetectionTask
from kdinspect.tasks.segmentation import SegmentationTask

__all__ = ["DetectionTask", "Detections", "SegPrediction", "SegmentationTask", "Task"]
