"""bfloat16 autocast: the three systems' training objectives (HSD LD, MCFF-L KD, DKAN) under autocast, against float32.

The committed GPU results were trained with ``train.amp=true`` (bf16 autocast on CUDA, ``Trainer.train_step``). The
same model and loss code runs under CPU autocast here, so a dtype slip in it (a bf16 tensor meeting a float32 one
where autocast does not cast) fails in ``make test`` without a GPU; the ``cuda`` cases (marker ``gpu``) run the same
checks, and a short ``Trainer`` run with ``amp``, where CUDA is available (``make test-gpu``).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from tests.helpers.runs import seg_overrides
from tests.helpers.tiny_detector import tiny_faster_rcnn, tiny_targets

from kdinspect.data.structures import Batch, DetTarget, ImageMeta, SegTarget
from kdinspect.distill import DISTILLERS, HSDDistiller
from kdinspect.distill.mcff_kd import MCFFDistiller
from kdinspect.engine.trainer import Callback, Trainer
from kdinspect.models import build_model
from kdinspect.models.mcff import MCFFNet
from kdinspect.tasks import SegmentationTask
from kdinspect.tasks.detection import DetectionTask
from kdinspect.tasks.incremental import build_incremental_pair

CUDA = pytest.mark.gpu
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


def _cpu_bf16_autocast() -> bool:
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return torch.nn.functional.linear(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16
    except RuntimeError:
        return False


def _need(device: str) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if device == "cuda" and not torch.cuda.is_bf16_supported():
        pytest.skip("this CUDA device has no bfloat16")
    if device == "cpu" and not _cpu_bf16_autocast():
        pytest.skip(f"torch {torch.__version__} has no bfloat16 autocast on this CPU")


def _metas(n: int, size: int) -> list[ImageMeta]:
    return [ImageMeta(f"{i}.jpg", str(i), (size, size), (size, size)) for i in range(n)]


def _hsd() -> tuple[torch.nn.Module, Batch]:
    params = {"backbone": "mobilenet_v3_small", "channels": 32, "norm_eval": True}
    torch.manual_seed(0)
    student = build_model("hsd_student", 2, params)
    teacher = build_model("hsd_teacher", 2, params)
    targets = [
        DetTarget(torch.tensor([[4.0, 6.0, 40.0, 30.0], [30.0, 30.0, 60.0, 62.0]]), torch.tensor([0, 1])),
        DetTarget(torch.tensor([[10.0, 10.0, 50.0, 40.0]]), torch.tensor([1])),
    ]
    return HSDDistiller(DetectionTask(student, ["a", "b"]), teacher), Batch(
        torch.rand(2, 3, 64, 64), targets, _metas(2, 64)
    )


def _mcff() -> tuple[torch.nn.Module, Batch]:
    torch.manual_seed(0)
    student = MCFFNet(width=4, n_blocks=1, dropout=0.0, infer_temperature=10.0)
    g = torch.Generator().manual_seed(1)
    targets = [
        SegTarget((torch.rand(32, 32, generator=g) > 0.8).float(), torch.rand(4, 32, 32, generator=g)) for _ in range(2)
    ]
    kd = MCFFDistiller(SegmentationTask(student, ["crack"]), None, "offline", t0=10.0, t1=10.0)
    return kd, Batch(torch.rand(2, 3, 32, 32, generator=g), targets, _metas(2, 32))


def _dkan() -> tuple[torch.nn.Module, Batch]:
    teacher, student = build_incremental_pair(tiny_faster_rcnn(3), 3, cosine_scale=20.0, freeze="dkan")
    kd = DISTILLERS["dkan"](DetectionTask(student, ["c"] * 6), teacher, num_base_classes=3, split=1)
    torch.manual_seed(0)
    return kd, Batch(torch.rand(2, 3, 64, 64), tiny_targets(2, 6), _metas(2, 64))


SYSTEMS: dict[str, Callable[[], tuple[torch.nn.Module, Batch]]] = {"hsd_ld": _hsd, "mcff_kd": _mcff, "dkan": _dkan}


def _run(kd: torch.nn.Module, batch: Batch, device: str, bf16: bool) -> tuple[dict[str, float], list[torch.dtype]]:
    """One forward + backward; returns the loss terms and the dtypes the convolutions produced."""
    kd.zero_grad(set_to_none=True)
    dtypes: list[torch.dtype] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
        for m in kd.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    torch.manual_seed(0)  # the same RoI / proposal sampling in both runs
    try:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            out = kd(batch)
        out["loss"].backward()
    finally:
        for h in hooks:
            h.remove()
    return {k: float(v.detach().float()) for k, v in out.items()}, dtypes


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_objective_under_bf16_autocast_matches_float32(system: str, device: str) -> None:
    _need(device)
    kd, batch = SYSTEMS[system]()
    kd = kd.to(device).train()
    batch = batch.to(device)
    ref, ref_dtypes = _run(kd, batch, device, bf16=False)
    ref_grads = {n: p.grad.clone() for n, p in kd.named_parameters() if p.grad is not None}
    got, dtypes = _run(kd, batch, device, bf16=True)
    assert set(ref_dtypes) == {torch.float32}
    assert dtypes and set(dtypes) == {torch.bfloat16}, set(dtypes)  # autocast really ran the convolutions in bf16
    assert got.keys() == ref.keys()
    for key, value in ref.items():
        # bf16 keeps ~3 significant digits; 5 % (plus a floor for terms near 0) is loose for rounding, not for a
        # term computed from the wrong tensor
        assert got[key] == pytest.approx(value, rel=0.05, abs=2e-3), (key, got[key], value)
    grads = {n: p.grad for n, p in kd.named_parameters() if p.grad is not None}
    assert grads.keys() == ref_grads.keys() and grads
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads.values())  # fp32 master weights
    cos = torch.nn.functional.cosine_similarity(
        torch.cat([g.flatten() for g in grads.values()]), torch.cat([g.flatten() for g in ref_grads.values()]), dim=0
    )
    assert cos > 0.95, float(cos)


class _ConvDtypes(Callback):
    """Records the output dtype of every convolution run in training mode."""

    def __init__(self) -> None:
        self.dtypes: set[torch.dtype] = set()

    def on_fit_start(self, trainer: Trainer) -> None:
        def hook(m: torch.nn.Module, _i: object, out: torch.Tensor) -> None:
            if m.training:
                self.dtypes.add(out.dtype)

        for m in trainer.task.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.register_forward_hook(hook)


DET = [
    "task=detection",
    "data.format=synthetic-det",
    "data.params.n_train=16",
    "data.params.n_val=4",
    "data.imgsz=64",
    "model.name=hsd_student",
    "model.params.backbone=mobilenet_v3_small",
    "model.params.channels=32",
    "model.params.pretrained=false",
    "train.optimizer=sgd",
    "train.lr=0.01",
]


@CUDA
@pytest.mark.parametrize("task", ["segmentation", "detection"])
def test_trainer_amp_on_cuda_trains_in_bf16_and_saves_float32(tmp_path: Path, task: str) -> None:
    """``train.amp=true`` on CUDA (how the committed MCFF-L GPU runs trained; HSD with amp crashed before the GFL fix):
    the convolutions run in bf16, the loss stays finite (and falls for the segmenter), the weights stay float32."""
    _need("cuda")
    from kdinspect.api import train
    from kdinspect.config import load_config
    from kdinspect.engine.checkpoint import load_checkpoint

    extra = ["train.device=cuda", "train.amp=true", *(DET if task == "detection" else [])]
    ovr = seg_overrides(tmp_path / "data", tmp_path, "amp", epochs=4, extra=extra)
    if task == "detection":
        ovr = [o for o in ovr if not o.startswith(("data.params.size", "model.params.width", "model.params.depth"))]
    probe = _ConvDtypes()
    run = train(load_config(None, ovr), callbacks=[probe], progress=False)
    assert probe.dtypes == {torch.bfloat16}, probe.dtypes
    with (run.run_dir / "steps.csv").open() as fh:
        loss = [float(r["loss"]) for r in csv.DictReader(fh)]
    assert loss and all(torch.isfinite(torch.tensor(loss))), loss
    if task == "segmentation":  # the 16-step detector's loss is not monotone enough to bound (7.6 -> 8.7 on a CPU)
        assert loss[-1] < loss[0], loss
    ckpt = load_checkpoint(run.last)
    assert ckpt.state["trainer"]["global_step"] == 16
    assert all(v.dtype == torch.float32 for v in ckpt.model.values() if v.is_floating_point())
    assert run.metrics
