"""NaN/Inf weights or outputs give an error naming the checkpoint, the tensor or the image, not a numpy/torch
internals message ("bincount only supports 1-d non-negative integral inputs")."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.helpers.runs import seg_overrides

from kdinspect.api import evaluate
from kdinspect.config import load_config
from kdinspect.engine.checkpoint import CheckpointError, load_model, save_checkpoint
from kdinspect.evaluation.segmentation import SegmentationMeter
from kdinspect.models import build_model


def _checkpoint(tmp_path: Path, poison: float | None) -> tuple[Path, str]:
    cfg = load_config(None, seg_overrides(tmp_path / "data", tmp_path, "nan", extra=["data.params.n_val=2"]))
    torch.manual_seed(0)
    model = build_model(cfg.model.name, 1, dict(cfg.model.params))
    name, param = next(iter(model.named_parameters()))
    if poison is not None:
        with torch.no_grad():
            param.view(-1)[3] = poison
    return save_checkpoint(tmp_path / "m.safetensors", model, cfg, ["crack"], "segmentation"), name


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_checkpoint_with_nonfinite_weights_is_named(tmp_path: Path, poison: float) -> None:
    path, name = _checkpoint(tmp_path, poison)
    with pytest.raises(CheckpointError, match=rf"m\.safetensors.*{name}.*1 NaN/Inf"):
        evaluate(path)  # was: RuntimeError bincount only supports 1-d non-negative integral inputs


def test_finite_checkpoint_still_evaluates(tmp_path: Path) -> None:
    path, _ = _checkpoint(tmp_path, None)
    assert 0.0 <= evaluate(path)["f1"] <= 1.0


def test_nan_output_in_evaluation_names_the_image_and_the_weights(tmp_path: Path) -> None:
    from kdinspect.api import _task_from_loaded, build_loader
    from kdinspect.data import build_dataset
    from kdinspect.evaluation.runner import evaluate_task

    path, name = _checkpoint(tmp_path, None)
    loaded = load_model(path)
    with torch.no_grad():
        dict(loaded.model.named_parameters())[name].view(-1)[3] = float("nan")  # diverged in memory, during training
    ds = build_dataset(loaded.cfg.data, "val", "segmentation", train=False, run_dir=loaded.cfg.run_dir)
    with pytest.raises(FloatingPointError, match=rf"NaN/Inf.*\.png.*{name}"):
        evaluate_task(_task_from_loaded(loaded), build_loader(ds, 2, False))


def test_meter_rejects_nonfinite_probabilities() -> None:
    prob = torch.full((4, 4), 0.5)
    prob[1, 2] = float("nan")
    with pytest.raises(ValueError, match="1 NaN/Inf"):
        SegmentationMeter().update(prob, torch.zeros(4, 4))
