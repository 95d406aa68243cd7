"""kdinspect: lightweight visual defect inspection with knowledge distillation."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
