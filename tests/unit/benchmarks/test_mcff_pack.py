"""benchmarks/mcff_pack.py: slimmed student weights load with load_model; the teacher ships as a header only."""

from __future__ import annotations

from pathlib import Path

import torch
from benchmarks.mcff_pack import ARCH_CKPT, pack, unpack

from kdinspect.config import load_config
from kdinspect.engine.checkpoint import load_model, save_checkpoint
from kdinspect.models import build_model


def _ckpt(path: Path, name: str) -> torch.nn.Module:
    cfg = load_config(None, [f"model.name={name}", "task=segmentation"])
    torch.manual_seed(0)
    model = build_model(name, 1, {})
    path.parent.mkdir(parents=True)
    optim = torch.optim.RMSprop(model.parameters())
    save_checkpoint(path, model, cfg, ["crack"], "segmentation", optimizer=optim)
    (path.parent / "results.json").write_text("{}")
    return model


def test_pack_unpack_roundtrip(tmp_path: Path) -> None:
    work = tmp_path / "work"
    student = _ckpt(work / "runs" / "ds_student" / "best.safetensors", "mcff_student")
    _ckpt(work / "runs" / "ds_teacher" / "best.safetensors", "mcff_student")  # any MCFF net stands in
    paths = pack(work, tmp_path / "out" / "a.tar", "ds_teacher", max_part_bytes=2 << 20)
    assert len(paths) == 2  # the float16 student (2.4 MB) fills a 2 MiB part on its own
    back = tmp_path / "back"
    names = unpack([tmp_path / "out"], back, "ds_teacher")
    assert "runs/ds_student/results.json" in names and "runs/ds_teacher/best.safetensors" not in names
    loaded = load_model(back / "runs" / "ds_student" / "best.safetensors")
    for (k, a), b in zip(student.state_dict().items(), loaded.model.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-4), k
    arch = load_model(back / "runs" / "ds_teacher" / ARCH_CKPT)
    assert sum(p.numel() for p in arch.model.parameters()) == sum(p.numel() for p in student.parameters())
