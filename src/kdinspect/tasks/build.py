"""Build the task (model + task glue + optional distiller) that a run config describes."""

from __future__ import annotations

import logging

from kdinspect.config import RunConfig
from kdinspect.models import MODELS, build_model
from kdinspect.models.registry import check_params
from kdinspect.tasks.base import Task
from kdinspect.tasks.detection import DetectionTask
from kdinspect.tasks.segmentation import SegmentationTask

__all__ = ["TASKS", "build_task", "model_kind"]

logger = logging.getLogger(__name__)

TASKS: dict[str, type[Task]] = {"detection": DetectionTask, "segmentation": SegmentationTask}


def model_kind(cfg: RunConfig) -> str:
    """Task kind of the configured model (``MODELS`` spec), falling back to ``cfg.task``."""
    name = cfg.model.name
    return MODELS[name].task if name in MODELS else cfg.task


def build_task(cfg: RunConfig, classes: list[str]) -> Task:
    """Model from ``cfg.model``, wrapped in the Task of its kind, wrapped in a Distiller if ``cfg.distill.teacher``
    or ``cfg.distill.method`` is set (a method without a teacher is an offline distiller)."""
    from kdinspect.distill import DISTILLERS
    from kdinspect.engine.checkpoint import load_model

    kind = model_kind(cfg)
    if kind not in TASKS:
        raise KeyError(f"no task for kind {kind!r}; valid: {sorted(TASKS)}")
    num_classes = cfg.model.num_classes or len(classes)
    model = build_model(cfg.model.name, num_classes, cfg.model.params)
    task: Task = TASKS[kind](model, classes)
    if not (cfg.distill.teacher or cfg.distill.method):
        return task
    teacher = None
    if cfg.distill.teacher:
        teacher = load_model(cfg.distill.teacher)
        if teacher.kind != kind:
            raise ValueError(f"teacher {cfg.distill.teacher} is a {teacher.kind} model; the student is {kind}")
        if list(teacher.classes) != list(classes):
            raise ValueError(f"teacher classes {teacher.classes} differ from the student's {classes}")
    method = cfg.distill.method or (MODELS[cfg.model.name].distill if cfg.model.name in MODELS else "")
    if method not in DISTILLERS:
        raise KeyError(f"unknown distillation method {method!r}; valid: {sorted(DISTILLERS)}")
    check_params(DISTILLERS[method], cfg.distill.params, f"distill method {method!r}")
    # a method named without a teacher runs offline: its targets come with the batch (e.g. stored soft labels)
    task = DISTILLERS[method](task, None if teacher is None else teacher.model, **cfg.distill.params)
    source = f"{cfg.distill.teacher} ({teacher.cfg.model.name})" if teacher else "stored targets (offline)"
    logger.info("distilling from %s with %s", source, method)
    return task
