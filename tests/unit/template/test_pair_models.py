"""Reference-aware HSD detectors: fusions, first-conv init, task/distiller wiring, errors."""

from __future__ import annotations

import pytest
import torch

from kdinspect.data.structures import Batch, DetTarget, ImageMeta
from kdinspect.distill.ld import HSDDistiller
from kdinspect.models import build_model
from kdinspect.models.pair import FUSIONS, PairGFL
from kdinspect.tasks.detection import DetectionTask

SMALL = {"backbone": "mobilenet_v2", "channels": 16, "stacked": 1, "head_norm": "bn", "pred_kernel": 1}


def _batch(refs: bool = True, n: int = 2, size: int = 64) -> Batch:
    torch.manual_seed(0)
    images = torch.rand(n, 3, size, size)
    targets = [DetTarget(torch.tensor([[8.0, 8.0, 30.0, 30.0]]), torch.tensor([1])) for _ in range(n)]
    metas = [ImageMeta(f"img{i}.png", str(i), (size, size), (size, size)) for i in range(n)]
    return Batch(images, targets, metas, [], images.clone() if refs else None)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_pair_model_trains_and_predicts(fusion: str) -> None:
    torch.set_num_threads(1)
    model = build_model("hsd_student_ref", 3, {**SMALL, "fusion": fusion})
    assert isinstance(model, PairGFL)
    task = DetectionTask(model, ["a", "b", "c"]).train()
    out = task(_batch())
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    dets = task.predict(_batch())
    assert len(dets) == 2


def test_early_fusion_first_conv_init_and_trainable() -> None:
    base = build_model("hsd_student", 3, {**SMALL, "pretrained": True}).eval()
    pair = build_model("hsd_student_ref", 3, {**SMALL, "pretrained": True, "fusion": "early_ref"})
    conv = pair.get_submodule(pair.stem_conv)
    w0 = base.get_submodule(pair.stem_conv).weight
    assert conv.in_channels == 9
    torch.testing.assert_close(conv.weight[:, :3], w0)  # image: the ImageNet kernel
    assert conv.weight[:, 3:6].abs().sum() == 0  # reference: zeros
    torch.testing.assert_close(conv.weight[:, 6:], w0)  # |difference|: a copy
    pair.train()  # the pretrained stem is frozen, the widened conv is not
    assert conv.weight.requires_grad
    assert not base.get_submodule(pair.stem_conv).weight.requires_grad
    # reference == image: the difference is 0 and the backbone computes what the single-image one does
    pair.eval()
    x = torch.rand(1, 3, 64, 64)
    xn = (x - pair.mean) / pair.std
    got = pair.backbone(torch.cat([xn, xn, torch.zeros_like(x)], 1))
    for a, b in zip(got, base.backbone(xn)):
        torch.testing.assert_close(a, b)


def test_siamese_starts_as_the_single_image_detector() -> None:
    torch.manual_seed(0)
    pair = build_model("hsd_student_ref", 3, {**SMALL, "fusion": "siamese"}).eval()
    x, r = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    feats = pair.backbone((x - pair.mean) / pair.std)
    want = pair.neck(feats)
    got = pair.features(x, r)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_reference_errors_are_clear() -> None:
    pair = build_model("hsd_student_ref", 3, SMALL)
    with pytest.raises(ValueError, match="needs a reference image per sample"):
        DetectionTask(pair, ["a", "b", "c"]).train()(_batch(refs=False))
    single = build_model("hsd_student", 3, SMALL)
    with pytest.raises(ValueError, match="takes the test image only"):
        DetectionTask(single, ["a", "b", "c"]).train()(_batch(refs=True))
    with pytest.raises(ValueError, match="fusion 'late' not in"):
        build_model("hsd_student_ref", 3, {**SMALL, "fusion": "late"})
    with pytest.raises(TypeError, match="unknown parameter"):
        build_model("hsd_student_ref", 3, {**SMALL, "bogus": 1})


@pytest.mark.parametrize("teacher_name", ["hsd_teacher_ref", "hsd_teacher"])
def test_distillation_with_pair_student(teacher_name: str) -> None:
    torch.set_num_threads(1)
    student = DetectionTask(build_model("hsd_student_ref", 3, SMALL), ["a", "b", "c"])
    teacher = build_model(teacher_name, 3, SMALL)
    out = HSDDistiller(student, teacher).train()(_batch())
    assert torch.isfinite(out["distill.loss_ld"]) and out["distill.loss_ld"] > 0
    out["loss"].backward()
