"""kdinspect: lightweight visual defect inspection with knowledge distillation.

The public API mirrors the CLI: ``kdinspect.train(cfg)``, ``kdinspect.evaluate(ckpt)``, ``kdinspect.predict(ckpt,
source)``, ``kdinspect.export_checkpoint(ckpt)``, ``kdinspect.load_model(ckpt)``, ``kdinspect.load_config(path,
overrides)``. Attributes are imported lazily so that ``import kdinspect`` and ``kdinspect --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "train": "kdinspect.api",
    "evaluate": "kdinspect.api",
    "TrainResult": "kdinspect.api",
    "predict": "kdinspect.predictor",
    "export_checkpoint": "kdinspect.export.api",
    "load_model": "kdinspect.engine.checkpoint",
    "load_config": "kdinspect.config",
    "RunConfig": "kdinspect.config",
    "run_demo": "kdinspect.demo",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kdinspect' has no attribute {name!r}")
