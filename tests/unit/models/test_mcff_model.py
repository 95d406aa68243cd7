"""MCFF-L Net: parameter counts, shapes, channel convention, Keras padding equivalents, the dilation switch."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from kdinspect.data.structures import SegTarget
from kdinspect.models import MODELS, build_model
from kdinspect.models.mcff import MCFFNet, mcff_student, mcff_student_dw, mcff_student_lite, mcff_teacher
from kdinspect.models.mcff.blocks import Stride2Conv, Upsample2xConvT, conv
from kdinspect.models.mcff.net import gate
from kdinspect.models.mcff.targets import dilate_mask


def _trainable(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def _bn_stats(m: torch.nn.Module) -> int:
    return sum(b.numel() for n, b in m.named_buffers() if n.endswith(("running_mean", "running_var")))


def test_student_has_exactly_the_paper_parameter_count():
    m = mcff_student()
    assert _trainable(m) == 1_179_392
    assert _bn_stats(m) == 96  # Keras "non-trainable" BN moving mean/variance of the dilated decoder (32 + 16) x 2


def test_teacher_parameter_count():
    m = mcff_teacher()
    assert _trainable(m) == 32_889_152  # ~32.89 M
    assert _bn_stats(m) == 384


def test_mcld_variant_is_depthwise_and_smaller():
    m = mcff_student_dw()
    assert _trainable(m) == 406_784
    assert any(c.groups == c.in_channels > 1 for c in m.modules() if isinstance(c, torch.nn.Conv2d))


def test_all_convolutions_are_bias_free_and_dropout_only_in_teacher():
    for m, has_dropout in ((mcff_student(), False), (mcff_teacher(), True)):
        convs = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
        assert convs and all(c.bias is None for c in convs)
        assert any(isinstance(c, torch.nn.Dropout) for c in m.modules()) == has_dropout


def test_norm_layers_follow_keras_defaults():
    m = mcff_student()
    inst = [n for n in m.modules() if isinstance(n, torch.nn.InstanceNorm2d)]
    bns = [(name, n) for name, n in m.named_modules() if isinstance(n, torch.nn.BatchNorm2d)]
    assert all(n.affine and n.eps == 1e-3 for n in inst)
    assert len(bns) == 2 and all(name.startswith("paths.x.up") for name, _ in bns)  # the dilated-decoder quirk
    assert all(n.eps == 1e-3 and n.momentum == 0.01 for _, n in bns)


def test_registered_models():
    for name in ("mcff_teacher", "mcff_student", "mcff_student_dw", "mcff_student_lite"):
        assert MODELS[name].task == "segmentation"
    m = build_model("mcff_student", 1, {"infer_temperature": 10.0})
    assert isinstance(m, MCFFNet) and m.infer_temperature == 10.0
    with pytest.raises(TypeError, match="unknown parameter"):
        build_model("mcff_student", 1, {"widht": 8})
    with pytest.raises(ValueError, match="num_classes"):
        build_model("mcff_student", 2)


def _tiny(**kw) -> MCFFNet:
    return MCFFNet(width=4, n_blocks=1, dropout=0.0, **kw)


def test_eval_output_shape_and_channel_convention():
    torch.manual_seed(0)
    m = _tiny(infer_temperature=10.0).eval()
    x = torch.rand(2, 3, 32, 40)
    out = m(x)
    assert out._fields == ("prob",) and out.prob.shape == (2, 1, 32, 40)
    logits = m.forward_logits(x)
    assert logits._fields == ("h", "x", "y", "mix") and all(t.shape == (2, 2, 32, 40) for t in logits)
    # prob is the crack channel (index 0) of softmax(mix / T2)
    torch.testing.assert_close(out.prob, torch.softmax(logits.mix / 10.0, dim=1)[:, :1])


def test_mix_is_summed_before_gating():
    torch.manual_seed(0)
    m = _tiny().eval()
    x = torch.rand(1, 3, 16, 16)
    raw, _ = m.raw_logits(x)
    expected = gate(raw["h"] + raw["x"] + raw["y"])
    torch.testing.assert_close(m.forward_logits(x).mix, expected)
    g = gate(torch.tensor([0.0, 2.0, -4.0]).view(1, 3, 1, 1))  # sigmoid(0) = 0.5 scales channels 1 and 2
    torch.testing.assert_close(g.flatten(), torch.tensor([1.0, -2.0]))


def test_input_is_bgr_minus_one_to_one_and_odd_sizes_are_padded():
    m = _tiny().eval()
    x = torch.rand(1, 3, 30, 42)
    norm, size = m._normalize(x)
    assert size == (30, 42) and norm.shape[-2:] == (32, 44)
    torch.testing.assert_close(norm[:, :, :30, :42], x[:, [2, 1, 0]] * 2 - 1)
    assert m(x).prob.shape == (1, 1, 30, 42)
    with pytest.raises(ValueError, match="RGB"):
        m(torch.rand(1, 1, 16, 16))


@pytest.mark.parametrize("s", [1, 4])  # 4: the lite construction, every output supervised at full resolution
def test_train_forward_returns_one_loss_per_output(s):
    m = _tiny(space_to_depth=s).train()
    x = torch.rand(2, 3, 32, 32)
    t = [SegTarget((torch.rand(32, 32) > 0.8).float()) for _ in range(2)]
    losses = m(x, t)
    assert sorted(losses) == ["loss_h", "loss_mix", "loss_x", "loss_y"]
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in m.parameters())


def test_stride2_conv_matches_keras_same_alignment():
    layer = Stride2Conv(1, 1)
    with torch.no_grad():
        layer.conv.weight.zero_()
        layer.conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left tap
    x = torch.arange(64.0).view(1, 1, 8, 8)
    y = layer(x)
    assert y.shape == (1, 1, 4, 4)
    torch.testing.assert_close(y, x[..., ::2, ::2])  # Keras pads bottom/right only: tap (0,0) sits on pixel (2i, 2j)


def test_transposed_conv_matches_keras_same_alignment():
    layer = Upsample2xConvT(1, 1)
    with torch.no_grad():
        layer.conv.weight.zero_()
        layer.conv.weight[0, 0, 0, 0] = 1.0
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y = layer(x)
    assert y.shape == (1, 1, 8, 8)
    torch.testing.assert_close(y[..., ::2, ::2], x)  # TF: input i scatters to 2i + k, k = kernel tap
    assert y[..., 1::2, :].abs().sum() == 0


def test_same_padding_conv_keeps_size_with_dilation_and_rectangles():
    x = torch.rand(1, 2, 9, 11)
    for kernel, dil in ((3, 3), (7, 1), ((7, 3), 1), ((1, 3), 1), (3, 2)):
        assert conv(2, 3, kernel, dil)(x).shape == (1, 3, 9, 11)
    with pytest.raises(ValueError, match="odd"):
        conv(2, 3, 2)


def test_dilation_switch_on_a_single_pixel():
    m = torch.zeros(1, 1, 11, 11)
    m[0, 0, 5, 5] = 1
    released = dilate_mask(m, "released", 3)[0, 0]
    assert released.sum() == 4 and released[5:9, 5].sum() == 4  # 2x1 kernel: 3 px downward only
    square = dilate_mask(m, "3x3", 3)[0, 0]
    assert square.sum() == 49 and square[2:9, 2:9].sum() == 49
    torch.testing.assert_close(dilate_mask(m, "none", 3), m)
    with pytest.raises(ValueError, match="gt_dilation"):
        dilate_mask(m, "cross")


def test_dilation_matches_opencv_including_the_tuple_kernel_quirk():
    rng = np.random.default_rng(0)
    mask = (rng.random((24, 31)) > 0.95).astype(np.uint8)
    t = torch.from_numpy(mask).float()[None, None]
    ours = dilate_mask(t, "released", 3)[0, 0].numpy().astype(np.uint8)
    np.testing.assert_array_equal(ours, cv2.dilate(mask, kernel=(3, 3), iterations=3))
    ours = dilate_mask(t, "3x3", 2)[0, 0].numpy().astype(np.uint8)
    np.testing.assert_array_equal(ours, cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=2))


def test_lite_student_runs_the_paths_at_quarter_resolution():
    m = mcff_student_lite().eval()
    assert _trainable(m) == 512_116 and m.space_to_depth == 4 and m.multiple == 16
    seen = {}
    m.paths.h.blocks.register_forward_hook(lambda mod, i, o: seen.update(blocks=o.shape))
    m(torch.rand(1, 3, 64, 96))
    assert seen["blocks"] == (1, 40, 4, 6)  # width 4d = 40 at 1/16: 1/4 by pixel unshuffle, 1/4 by the encoder
    with pytest.raises(ValueError, match="space_to_depth"):
        MCFFNet(space_to_depth=0)


@pytest.mark.parametrize("s", [1, 2, 4])
@pytest.mark.parametrize("attention", [True, False])
def test_predict_prob_equals_softmax_of_the_gated_mix(s, attention):
    """The deployed shortcut (sigmoid of the logit difference, gated and shuffled at 1/s) equals the definition."""
    torch.manual_seed(s)
    m = _tiny(space_to_depth=s, attention=attention, infer_temperature=3.0).eval()
    x = torch.rand(2, 3, 37, 53)  # not a multiple of 4 * s: padded and cropped back
    with torch.no_grad():
        prob = m(x).prob
        logits = m.forward_logits(x)
    assert prob.shape == (2, 1, 37, 53) and all(t.shape == (2, 2, 37, 53) for t in logits)
    torch.testing.assert_close(prob, torch.softmax(logits.mix / 3.0, dim=1)[:, :1])
