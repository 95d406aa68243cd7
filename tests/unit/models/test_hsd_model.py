"""HSD detector: HKN/HKH shapes and parameter counts (seed-systems.md §1.1), the model contract and ONNX parity."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from kdinspect.data.structures import DetTarget
from kdinspect.models import MODELS, build_model
from kdinspect.models.gfl import GFL
from kdinspect.models.heads.gfl_head import GFLHead
from kdinspect.models.necks.fpn import FPN
from kdinspect.models.necks.hkn import HKN, CoordAtt
from kdinspect.tasks.base import Detections

R18_C3_C5 = [128, 256, 512]


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_paper_parameter_counts() -> None:
    hkn = HKN(R18_C3_C5, 256)
    assert n_params(hkn) == 661_648
    assert n_params(hkn.coord_att) == 38_544
    assert n_params(FPN(R18_C3_C5, 256)) == 3_180_544
    assert n_params(GFLHead(1, 256, 256)) == 596_810


@pytest.mark.parametrize("ca_mode", ["released_noop", "apply_on_laterals"])
def test_hkn_shapes_and_ca_mode(ca_mode: str) -> None:
    torch.manual_seed(0)
    neck = HKN([16, 24, 40], 32, ca_mode=ca_mode)
    feats = [torch.randn(2, c, s, s) for c, s in zip([16, 24, 40], [16, 8, 4])]
    outs = neck(feats)
    assert [tuple(o.shape) for o in outs] == [
        (2, 32, 16, 16),
        (2, 32, 8, 8),
        (2, 32, 4, 4),
        (2, 32, 2, 2),
        (2, 32, 1, 1),
    ]
    assert neck.strides == [8, 16, 32, 64, 128]
    # released_noop: CA holds parameters but does not change the output
    neck.coord_att[0].conv_h.bias.data += 5.0
    changed = not torch.allclose(neck(feats)[0], outs[0])
    assert changed == (ca_mode == "apply_on_laterals")


def test_coord_att_shape_and_gating() -> None:
    ca = CoordAtt(32).eval()
    x = torch.randn(2, 32, 6, 9)
    y = ca(x)
    assert y.shape == x.shape
    assert (y.abs() <= x.abs() + 1e-6).all()  # sigmoid gates only shrink


def test_hkh_head_shapes() -> None:
    head = GFLHead(num_classes=3, in_channels=32, feat_channels=32, num_levels=2)
    cls, reg = head([torch.randn(1, 32, 8, 8), torch.randn(1, 32, 4, 4)])
    assert [tuple(c.shape) for c in cls] == [(1, 3, 8, 8), (1, 3, 4, 4)]
    assert [tuple(r.shape) for r in reg] == [(1, 68, 8, 8), (1, 68, 4, 4)]
    assert torch.allclose(cls[0].sigmoid().mean(), torch.tensor(0.01), atol=2e-3)  # prior-probability bias


def tiny(name: str = "hsd_student", **params: object) -> GFL:
    torch.manual_seed(0)
    params = {"backbone": "mobilenet_v3_small", "channels": 32, **params}
    return build_model(name, 2, params)  # type: ignore[return-value]


def targets() -> list[DetTarget]:
    return [
        DetTarget(torch.tensor([[4.0, 6.0, 40.0, 30.0], [30.0, 30.0, 60.0, 62.0]]), torch.tensor([0, 1])),
        DetTarget(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)),
    ]


@pytest.mark.parametrize("cls_loss", ["bce", "qfl"])
@pytest.mark.parametrize("name", ["hsd_teacher", "hsd_student"])
def test_train_mode_losses_and_gradients(name: str, cls_loss: str) -> None:
    model = tiny(name, cls_loss=cls_loss).train()
    losses = model(torch.rand(2, 3, 64, 64), targets())
    assert set(losses) == {"loss_cls", "loss_bbox", "loss_dfl"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert model.head.gfl_reg.weight.grad.abs().sum() > 0
    assert model.head.gfl_cls.weight.grad.abs().sum() > 0


def test_eval_mode_returns_detections() -> None:
    model = tiny(score_thr=0.0).eval()
    with torch.no_grad():
        dets = model(torch.rand(2, 3, 64, 96))
    assert len(dets) == 2 and all(isinstance(d, Detections) for d in dets)
    d = dets[0]
    assert d.boxes.shape[1] == 4 and 0 < len(d.scores) <= 100 and d.labels.dtype == torch.int64
    assert (d.boxes[:, 0::2] <= 96).all() and (d.boxes[:, 1::2] <= 64).all() and (d.boxes >= 0).all()
    assert torch.all(d.scores[:-1] >= d.scores[1:])


def test_models_registered() -> None:
    assert MODELS["hsd_teacher"].task == MODELS["hsd_student"].task == "detection"
    assert MODELS["hsd_student"].distill == "hsd_ld"
    with pytest.raises(TypeError, match="unknown parameter"):
        build_model("hsd_student", 1, {"nope": 1})
    with pytest.raises(ValueError, match="ca_mode"):
        build_model("hsd_student", 1, {"ca_mode": "wrong", "backbone": "mobilenet_v3_small", "channels": 32})


@pytest.mark.export
@pytest.mark.parametrize("nms", [True, False])
def test_onnx_export_matches_eager(nms: bool) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = tiny(score_thr=0.005, ca_mode="apply_on_laterals", channels=64).eval()  # GN groups of 2 at batch 1
    module = model.inference_module(nms=nms).eval()
    x = torch.rand(1, 3, 64, 64)
    buf = io.BytesIO()
    torch.onnx.export(
        module, (x,), buf, input_names=["images"], output_names=list(module(x)._fields), opset_version=17, dynamo=False
    )
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"images": x.numpy()})
    with torch.no_grad():
        want = [t.numpy() for t in module(x)]
    assert [g.shape for g in got] == [w.shape for w in want]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-4)
    if nms:
        assert want[0].shape[0] > 0  # the comparison covered real detections
