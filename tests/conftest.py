"""Shared pytest fixtures: the shared real datasets and session-scoped synthetic datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_datasets_dir() -> Path:
    """``$KDINSPECT_SHARED_DATA`` or ``<repo>/../shared/datasets``."""
    return Path(os.environ.get("KDINSPECT_SHARED_DATA", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the shared real datasets (neu-det, deeppcb, deepcrack, crackforest); skips when absent."""
    path = shared_datasets_dir()
    if not path.is_dir():
        pytest.skip(f"shared datasets not found at {path} (set KDINSPECT_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def synthetic_det(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic VOC detection set (train 24 / val 8, 96 px), generated once per session."""
    from kdinspect.data.synthetic import generate_detection_dataset

    return generate_detection_dataset(tmp_path_factory.mktemp("synthetic_det"), 24, 8, seed=0, imgsz=96)


@pytest.fixture(scope="session")
def synthetic_seg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic crack set (train 12 / val 4, 64x80), generated once per session."""
    from kdinspect.data.synthetic import generate_segmentation_dataset

    return generate_segmentation_dataset(tmp_path_factory.mktemp("synthetic_seg"), 12, 4, seed=0, size=(64, 80))
