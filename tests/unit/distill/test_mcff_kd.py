"""MCFF-L distillation: temperature strategies, offline/online objectives, soft-label files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdinspect.data.io import load_soft_label
from kdinspect.data.structures import Batch, ImageMeta, SegTarget
from kdinspect.distill import DISTILLERS
from kdinspect.distill.mcff_kd import STRATEGIES, MCFFDistiller, teacher_soft_maps
from kdinspect.distill.soft_labels import quantize_8bit, soft_label_dirs, write_soft_label
from kdinspect.losses.segmentation import compute_map_loss, two_channel
from kdinspect.models.mcff import MCFFNet
from kdinspect.models.mcff.targets import soften
from kdinspect.tasks import SegmentationTask


def _net(seed: int = 0, **kw) -> MCFFNet:
    torch.manual_seed(seed)
    return MCFFNet(width=4, n_blocks=1, dropout=0.0, **kw)


def _batch(soft: bool = True, n: int = 2, size: int = 16) -> Batch:
    g = torch.Generator().manual_seed(1)
    targets = [
        SegTarget(
            (torch.rand(size, size, generator=g) > 0.8).float(),
            torch.rand(4, size, size, generator=g) if soft else None,
        )
        for _ in range(n)
    ]
    metas = [ImageMeta(f"{i}.jpg", str(i), (size, size), (size, size)) for i in range(n)]
    return Batch(torch.rand(n, 3, size, size, generator=g), targets, metas)


def test_strategy_table_matches_the_paper():
    assert STRATEGIES == {
        "standard": (0.0, 10.0, 1.0),
        "hyperthermal": (10.0, 10.0, 10.0),
        "non_isothermal": (0.0, 10.0, 10.0),
    }


@pytest.mark.parametrize("strategy", ["standard", "hyperthermal", "non_isothermal"])
def test_builder_sets_temperatures_and_checks_t2(strategy):
    t0, t1, t2 = STRATEGIES[strategy]
    kd = DISTILLERS["mcff_kd"](SegmentationTask(_net(infer_temperature=t2), ["crack"]), None, strategy=strategy)
    assert isinstance(kd, MCFFDistiller) and kd.mode == "offline" and kd.teacher is None
    assert (kd.t0, kd.t1, kd.t2) == (t0, t1, t2)
    wrong = 1.0 if t2 != 1.0 else 10.0
    with pytest.raises(ValueError, match="infer_temperature"):
        DISTILLERS["mcff_kd"](SegmentationTask(_net(infer_temperature=wrong), ["crack"]), None, strategy=strategy)


def test_offline_objective_is_the_five_released_terms():
    student = _net(infer_temperature=10.0)
    kd = DISTILLERS["mcff_kd"](SegmentationTask(student, ["crack"]), None, strategy="hyperthermal")
    batch = _batch()
    out = kd(batch)
    assert sorted(out) == [
        "distill.loss_h",
        "distill.loss_mix",
        "distill.loss_x",
        "distill.loss_y",
        "loss",
        "student.loss_mix_for_real",
    ]
    logits = student.forward_logits(batch.images)
    soft = torch.stack([t.soft for t in batch.targets])
    for i, name in enumerate(["h", "x", "y", "mix"]):
        want = compute_map_loss("asymmetric", getattr(logits, name), two_channel(soft[:, i : i + 1]), 10.0)
        torch.testing.assert_close(out[f"distill.loss_{name}"], want)
    gt = soften(student.gt_target(batch.targets, (16, 16), torch.device("cpu")), 10.0)  # T0 = 10
    torch.testing.assert_close(out["student.loss_mix_for_real"], compute_map_loss("asymmetric", logits.mix, gt, 10.0))
    torch.testing.assert_close(out["loss"], sum(v for k, v in out.items() if k != "loss"))
    out["loss"].backward()


def test_offline_needs_soft_labels():
    kd = DISTILLERS["mcff_kd"](SegmentationTask(_net(), ["crack"]), None)
    with pytest.raises(ValueError, match="no soft labels"):
        kd(_batch(soft=False))


def test_online_mode_uses_the_frozen_teacher():
    teacher, student = _net(1), _net(2)
    kd = DISTILLERS["mcff_kd"](SegmentationTask(student, ["crack"]), teacher, strategy="standard")
    assert kd.mode == "online" and not any(p.requires_grad for p in teacher.parameters())
    assert "teacher" not in dict(kd.named_modules()) and not any(k.startswith("teacher") for k in kd.state_dict())
    batch = _batch(soft=False)
    kd.train()
    assert not teacher.training
    out = kd(batch)
    out["loss"].backward()
    maps = teacher_soft_maps(teacher, batch.images, 10.0)
    assert maps.shape == (2, 4, 16, 16)
    # same objective as offline mode with the teacher's maps stored in the batch
    stored = Batch(batch.images, [SegTarget(t.mask, maps[i]) for i, t in enumerate(batch.targets)], batch.metas)
    offline = DISTILLERS["mcff_kd"](SegmentationTask(student, ["crack"]), None, strategy="standard")
    torch.testing.assert_close(offline(stored)["loss"], out["loss"])


def _read_back(paths) -> np.ndarray:
    """Read soft-label files with the data layer's loader (PNG = pixel / 255 per file, stacked; .npy as stored)."""
    return load_soft_label([str(p) for p in paths])


def test_soft_label_png_round_trip_is_8bit(tmp_path):
    rng = np.random.default_rng(0)
    prob = rng.random((4, 5, 7)).astype(np.float32)
    prob[0, 0, 0], prob[1, 0, 0] = 0.0, 1.0
    paths = write_soft_label(prob, tmp_path, "img1", "png")
    assert [str(p.parent) for p in paths] == soft_label_dirs(tmp_path, "png")
    assert [p.parent.name for p in paths] == ["h", "x", "y", "mix"]
    back = _read_back(paths)
    assert back.shape == (4, 5, 7)
    np.testing.assert_array_equal(back, quantize_8bit(prob) / np.float32(255.0))
    assert np.abs(back - prob).max() <= 0.5 / 255 + 1e-7
    assert back[0, 0, 0] == 0.0 and back[1, 0, 0] == 1.0
    assert len(np.unique(back)) <= 256


def test_soft_label_npy_round_trip_and_errors(tmp_path):
    prob = np.random.default_rng(1).random((4, 3, 3)).astype(np.float32)
    paths = write_soft_label(prob, tmp_path, "a", "npy")
    assert [str(p.parent) for p in paths] == soft_label_dirs(tmp_path, "npy")
    np.testing.assert_allclose(_read_back(paths), prob, atol=1e-3)
    with pytest.raises(ValueError, match="format"):
        write_soft_label(prob, tmp_path, "a", "jpg")
    with pytest.raises(ValueError, match="expected"):
        write_soft_label(prob[:2], tmp_path, "a", "png")


def test_offline_objective_hand_values_on_two_pixels():
    """T0 = 5, T1 = 10, T2 = 2 (all distinct) on one 1x2 image, every term worked out by hand from the logits."""
    import math

    from kdinspect.models.mcff.net import MCFFLogits

    student = _net(infer_temperature=2.0, gt_dilation="none")
    kd = MCFFDistiller(SegmentationTask(student, ["crack"]), None, "offline", t0=5.0, t1=10.0)
    a = 10.0 * math.log(3.0)  # softmax((a, 0) / 10) = (3/4, 1/4); softmax((a, 0) / 2) = (243/244, 1/244)

    def pair(z0: tuple[float, float], z1: tuple[float, float]) -> torch.Tensor:  # (1, 2, 1, 2): crack, background
        return torch.tensor([[list(z0)], [list(z1)]]).unsqueeze(0)

    logits = MCFFLogits(
        h=pair((0, 0), (0, 0)), x=pair((a, a), (0, 0)), y=pair((0, 0), (0, 0)), mix=pair((a, 0), (0, a))
    )
    student.forward_logits = lambda images: logits  # type: ignore[method-assign]
    soft = torch.tensor([[[1.0, 0.0]], [[0.75, 0.75]], [[0.5, 0.5]], [[0.5, 0.5]]])  # h, x, y, mix crack maps
    meta = ImageMeta("0.jpg", "0", (1, 2), (1, 2))
    out = kd(Batch(torch.zeros(1, 3, 1, 2), [SegTarget(torch.tensor([[1.0, 0.0]]), soft)], [meta]))
    # h: p = (1/2, 1/2) against (1, 0) and (0, 1): (200 * 1/2)^2 + (1/2)^2 on both pixels
    assert out["distill.loss_h"].item() == pytest.approx(10000.25, rel=1e-6)
    assert out["distill.loss_x"].item() == pytest.approx(0.0, abs=1e-6)  # (3/4, 1/4) once divided by T1
    assert out["distill.loss_y"].item() == pytest.approx(0.0, abs=1e-6)
    # mix: p = (3/4, 1/4) and (1/4, 3/4) against (1/2, 1/2): (200 * 1/4)^2 + (1/4)^2 on both pixels
    assert out["distill.loss_mix"].item() == pytest.approx(2500.0625, rel=1e-6)
    # GT one-hot softened by T0 = 5: crack pixel (s, 1 - s), s = sigmoid(1/5); mix at T2 = 2: (243/244, 1/244)
    s = 1.0 / (1.0 + math.exp(-0.2))
    want_real = (200.0**2 + 1.0) * (243.0 / 244.0 - s) ** 2
    assert out["student.loss_mix_for_real"].item() == pytest.approx(want_real, rel=1e-5)
    assert out["loss"].item() == pytest.approx(10000.25 + 2500.0625 + want_real, rel=1e-6)
