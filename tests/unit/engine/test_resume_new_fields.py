"""A run saved before a config field existed resumes: the field's default is not a change of settings."""

import json
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from kdinspect.config import RunConfig, apply_overrides
from kdinspect.engine.checkpoint import save_checkpoint
from kdinspect.engine.resume import ResumeConfigError, check_resume_config
from kdinspect.models import build_model


def _old_run(tmp_path: Path, cfg: RunConfig, drop: dict[str, list[str]]) -> Path:
    """A last.safetensors whose stored config lacks the ``drop`` keys (as written by an older kdinspect)."""
    run = tmp_path / "run"
    run.mkdir()
    path = save_checkpoint(run / "last.safetensors", build_model("unet", 1, cfg.model.params), cfg, ["c"], "seg")
    with safe_open(str(path), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        state = json.loads(fh.metadata()["kdinspect"])
    for section, keys in drop.items():
        for key in keys:
            del state["config"][section][key]
    save_file(tensors, str(path), metadata={"kdinspect": json.dumps(state)})
    return run


def test_resume_of_a_checkpoint_without_the_new_fields(tmp_path: Path) -> None:
    cfg = apply_overrides(RunConfig(), ["model.name=unet", "model.params.width=4", "model.params.depth=2"])
    run = _old_run(tmp_path, cfg, {"train": ["ema", "ema_decay", "ema_tau"]})
    assert check_resume_config(run, cfg) == {}
    # a new field set to something else than its default is a change, as before
    with pytest.raises(ResumeConfigError, match=r"train\.ema: False -> True"):
        check_resume_config(run, apply_overrides(cfg, ["train.ema=true"]))
