"""Model specification type used by the ``MODELS`` dict."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

__all__ = ["ModelSpec", "check_params"]


@dataclass(frozen=True)
class ModelSpec:
    """How to build one named model.

    Attributes:
        build: ``build(num_classes=..., **params) -> nn.Module``.
        task: ``detection`` or ``segmentation``: the Task class, evaluator and export wrapper that fit it.
        distill: default key in ``kdinspect.distill.DISTILLERS`` used when a run names a teacher but no method.
        description: one line shown by ``kdinspect info``.
    """

    build: Callable[..., nn.Module]
    task: str
    distill: str = ""
    description: str = ""


def check_params(fn: Callable[..., Any], params: dict[str, Any], what: str) -> None:
    """Raise ``TypeError`` naming the bad keys when ``params`` holds arguments ``fn`` does not accept."""
    sig = inspect.signature(fn)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return
    valid = [n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise TypeError(f"{what}: unknown parameter(s) {unknown}; valid: {valid}")
