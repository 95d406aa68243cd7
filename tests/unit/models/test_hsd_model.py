"""HSD detector: HKN/HKH shapes and parameter counts (seed-systems.md §1.1), the model contract and ONNX parity."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from kdinspect.data.structures import Detections, DetTarget
from kdinspect.models import MODELS, build_model
from kdinspect.models.gfl import GFL
from kdinspect.models.heads.gfl_head import GFLHead
from kdinspect.models.necks.fpn import FPN
from kdinspect.models.necks.hkn import HKN, CoordAtt

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


# --------------------------------------------------------------------------- lite student options (CPU latency)
def test_lite_head_options() -> None:
    head = GFLHead(num_classes=3, in_channels=32, feat_channels=32, stacked=2, num_levels=2, norm="bn", pred_kernel=1)
    assert head.gfl_cls.kernel_size == head.gfl_reg.kernel_size == (1, 1)
    block = head.cls_convs[0]
    assert len(block.dw_norms) == len(block.pw_norms) == 2 and isinstance(block.dw_norm, torch.nn.Identity)
    assert block.depthwise_conv.bias is None  # the BatchNorm carries the shift
    cls, reg = head([torch.randn(2, 32, 8, 8), torch.randn(2, 32, 4, 4)])
    assert [tuple(c.shape) for c in cls] == [(2, 3, 8, 8), (2, 3, 4, 4)]
    assert [tuple(r.shape) for r in reg] == [(2, 68, 8, 8), (2, 68, 4, 4)]
    # each level updates its own BatchNorm statistics; the convs are shared
    stats = [block.dw_norms[i].running_mean for i in range(2)]
    assert not torch.allclose(stats[0], stats[1])
    with pytest.raises(ValueError, match="norm"):
        GFLHead(num_classes=3, in_channels=32, feat_channels=32, norm="ln")
    with pytest.raises(ValueError, match="pred_kernel"):
        GFLHead(num_classes=3, in_channels=32, feat_channels=32, pred_kernel=5)


def test_lite_student_builds_with_defaults_unchanged() -> None:
    paper, lite = tiny(), tiny(stacked=2, head_norm="bn", pred_kernel=1, neck_kernel=5)
    assert paper.neck.layer_blocks[0].depthwise_conv.kernel_size == (7, 7)
    assert isinstance(paper.head.cls_convs[0].dw_norm, torch.nn.GroupNorm) and len(paper.head.cls_convs) == 3
    assert lite.neck.layer_blocks[0].depthwise_conv.kernel_size == (5, 5)
    assert all(c.depthwise_conv.kernel_size == (5, 5) for c in lite.neck.extra_blocks.convs)
    assert len(lite.head.cls_convs) == 2 and len(lite.head.cls_convs[0].dw_norms) == len(lite.strides)
    assert n_params(lite) < n_params(paper)
    losses = lite.train()(torch.rand(2, 3, 64, 64), targets())
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.export
def test_lite_export_folds_batchnorm() -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = tiny(stacked=2, head_norm="bn", pred_kernel=1, neck_kernel=5)
    for m in model.head.modules():  # non-trivial statistics, so a wrong fold would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    module = model.eval().inference_module(nms=False).eval()
    x = torch.rand(1, 3, 64, 64)
    buf = io.BytesIO()
    torch.onnx.export(module, (x,), buf, input_names=["images"], output_names=["boxes", "scores"], opset_version=17,
                      dynamo=False)  # fmt: skip
    ops = {n.op_type for n in onnx.load_from_string(buf.getvalue()).graph.node}
    assert "BatchNormalization" not in ops and "InstanceNormalization" not in ops
    got = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"]).run(None, {"images": x.numpy()})
    with torch.no_grad():
        want = [t.numpy() for t in module(x)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-4)


def test_topk_shortcut_keeps_every_anchor() -> None:
    from kdinspect.models.heads.gfl_decode import multiclass_nms, select_topk_per_level

    torch.manual_seed(0)
    counts = [6, 3]
    cls, reg = torch.randn(2, 9, 3), torch.randn(2, 9, 68)
    centres, strides = torch.rand(9, 2) * 64, torch.tensor([8.0] * 6 + [16.0] * 3)
    c, r, ctr, st = select_topk_per_level(cls, reg, centres, strides, counts, nms_pre=6)  # no level exceeds 6
    assert torch.equal(c, cls) and torch.equal(r, reg) and ctr.shape == (2, 9, 2) and st.shape == (2, 9)
    c4, _, _, st4 = select_topk_per_level(cls, reg, centres, strides, counts, nms_pre=4)  # level 0 cut to 4
    assert c4.shape == (2, 7, 3) and torch.equal(st4[:, 4:], torch.full((2, 3), 16.0))
    assert torch.equal(c4[0, :4].amax(1), cls[0, :6].amax(1).topk(4).values)
    # the NMS result does not depend on the candidates' order
    boxes = torch.cat([torch.rand(2, 9, 2) * 30, torch.rand(2, 9, 2) * 30 + 30], dim=2)
    perm = torch.randperm(9)
    a = multiclass_nms(boxes, cls.sigmoid(), 0.05, 0.6, 100)
    b = multiclass_nms(boxes[:, perm], cls[:, perm].sigmoid(), 0.05, 0.6, 100)
    assert torch.equal(a, b)
