"""Seeding, determinism and thread control."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["configure_threads", "seed_everything", "set_deterministic"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    """Switch torch to deterministic algorithms (and cuDNN determinism) or back."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def configure_threads(threads: int) -> int:
    """Set torch intra-op threads (0 = leave torch's default, all cores) and return the count in effect."""
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
