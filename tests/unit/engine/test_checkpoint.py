import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from kdinspect.config import RunConfig, apply_overrides
from kdinspect.engine.checkpoint import (
    CheckpointError,
    capture_rng,
    load_checkpoint,
    load_model,
    optimizer_from_tensors,
    restore_rng,
    save_checkpoint,
)
from kdinspect.models import build_model


def _cfg() -> RunConfig:
    return apply_overrides(RunConfig(), ["model.name=unet", "model.params.width=4", "model.params.depth=2"])


def test_round_trip_model_optimizer_rng(tmp_path: Path) -> None:
    cfg = _cfg()
    model = build_model("unet", 1, cfg.model.params)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    path = save_checkpoint(
        tmp_path / "c.safetensors",
        model,
        cfg,
        ["crack"],
        "segmentation",
        trainer_state={"epoch": 3},
        optimizer=opt,
        scheduler_state={"plateau_factor": 0.5},
    )
    expected_next = torch.rand(3)
    ckpt = load_checkpoint(path)
    assert ckpt.classes == ["crack"] and ckpt.kind == "segmentation" and ckpt.state["trainer"]["epoch"] == 3
    assert ckpt.config == cfg
    for k, v in model.state_dict().items():
        assert torch.equal(ckpt.model[k], v)
    opt2 = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(optimizer_from_tensors(ckpt.optim, ckpt.state["optimizer"]))
    for p in model.parameters():
        assert torch.equal(opt.state[p]["momentum_buffer"], opt2.state[p]["momentum_buffer"])
    restore_rng(ckpt.rng, ckpt.state["rng"])
    assert torch.equal(torch.rand(3), expected_next)
    loaded = load_model(path)
    assert not loaded.model.training and loaded.classes == ["crack"]


def test_rng_capture_restore_python_numpy() -> None:
    import random

    import numpy as np

    tensors, meta = capture_rng()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng(tensors, json.loads(json.dumps(meta)))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_truncated_checkpoint(tmp_path: Path) -> None:
    cfg = _cfg()
    path = save_checkpoint(
        tmp_path / "c.safetensors", build_model("unet", 1, cfg.model.params), cfg, ["c"], "segmentation"
    )
    data = path.read_bytes()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(bad)


def test_foreign_and_pickle_files(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a kdinspect checkpoint"):
        load_checkpoint(foreign)
    pkl = tmp_path / "x.pt"
    torch.save({"w": torch.zeros(1)}, pkl)
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(pkl)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError):
        load_checkpoint(junk)


def test_atomic_write_leaves_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg()
    model = build_model("unet", 1, cfg.model.params)
    path = save_checkpoint(tmp_path / "c.safetensors", model, cfg, ["c"], "segmentation", trainer_state={"epoch": 1})
    import kdinspect.engine.checkpoint as ck

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ck, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, cfg, ["c"], "segmentation", trainer_state={"epoch": 2})
    assert load_checkpoint(path).state["trainer"]["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


def test_load_model_overrides_rebuild_with_inference_settings(tmp_path: Path) -> None:
    params = ["backbone=mobilenet_v2", "pretrained=false", "fpn_channels=16", "representation_size=32"]
    cfg = apply_overrides(RunConfig(), ["model.name=faster_rcnn_fpn", *(f"model.params.{p}" for p in params)])
    model = build_model("faster_rcnn_fpn", 3, cfg.model.params)
    path = save_checkpoint(tmp_path / "d.safetensors", model, cfg, ["a", "b", "c"], "detection")
    assert load_model(path).model.rpn._post_nms_top_n["testing"] == 1000
    loaded = load_model(path, overrides=["model.params.rpn_post_nms_top_n=[1000,50]", "model.params.score_thresh=0.2"])
    assert loaded.model.rpn._post_nms_top_n["testing"] == 50 and loaded.model.roi_heads.score_thresh == 0.2
    assert loaded.cfg.model.params["rpn_post_nms_top_n"] == [1000, 50]
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v)
    # an override that changes the architecture fails the strict weight check and says which override did it
    with pytest.raises(CheckpointError, match=r"after the overrides \['model.params.fpn_channels=32'\]"):
        load_model(path, overrides=["model.params.fpn_channels=32"])
    with pytest.raises(KeyError, match="unknown config key"):
        load_model(path, overrides=["model.nope=1"])
