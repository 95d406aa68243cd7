"""Resuming a run whose data now gives another class list is refused (the labels would shift under the weights)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kdinspect.config import RunConfig, apply_overrides
from kdinspect.engine.checkpoint import save_checkpoint
from kdinspect.models import build_model


def test_resume_refuses_other_class_list(tmp_path):
    from kdinspect.api import _resume

    cfg = apply_overrides(RunConfig(), ["model.name=unet", "model.params.width=4", "model.params.depth=2"])
    model = build_model("unet", 1, cfg.model.params)
    path = save_checkpoint(tmp_path / "last.safetensors", model, cfg, ["crazing", "inclusion"], "detection")
    trainer = SimpleNamespace(task=SimpleNamespace(classes=["crazing", "inclusoin"]))
    with pytest.raises(ValueError, match=r"last.safetensors.*\['crazing', 'inclusion'\].*\['crazing', 'inclusoin'\]"):
        _resume(trainer, path)
