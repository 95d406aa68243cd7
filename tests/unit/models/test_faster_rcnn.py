import pytest
import torch
from tests.helpers.tiny_detector import tiny_faster_rcnn, tiny_targets

from kdinspect.data.structures import Detections
from kdinspect.models import MODELS, build_model


def test_train_mode_returns_four_finite_weighted_losses_with_gradients():
    model = tiny_faster_rcnn(3).train()
    losses = model(torch.rand(2, 3, 64, 64), tiny_targets(2, 3))
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    assert all(v.item() > 0 for v in losses.values()), losses  # every term has something to learn at init
    total.backward()
    # each loss reaches the part it trains: the RPN, the classifier, the box regressor and the backbone under them
    for name in ("rpn.head.cls_logits", "rpn.head.bbox_pred", "roi_heads.box_predictor.cls_score"):
        grad = model.get_submodule(name).weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    grad = model.roi_heads.box_predictor.bbox_pred.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())


def test_loss_weights_multiply_losses():
    model = tiny_faster_rcnn(3).train()
    model.loss_weights["loss_cls"] = 0.0
    torch.manual_seed(0)
    assert model(torch.rand(1, 3, 64, 64), tiny_targets(1, 3))["loss_cls"].item() == 0.0


def test_eval_mode_returns_detections_with_dataset_labels():
    model = tiny_faster_rcnn(3, cosine_scale=20.0).eval()
    model.roi_heads.score_thresh = 0.0
    with torch.no_grad():
        dets = model(torch.rand(2, 3, 64, 64))
    assert len(dets) == 2 and all(isinstance(d, Detections) for d in dets)
    for d in dets:
        assert d.boxes.shape[1] == 4 and d.boxes.shape[0] == d.scores.shape[0] == d.labels.shape[0]
        assert d.labels.numel() > 0  # score threshold 0: every image gets detections, so the checks below bite
        assert d.labels.min() >= 0 and d.labels.max() < 3
        assert (d.scores >= 0).all() and (d.scores <= 1).all()
        assert (d.boxes[:, 2:] >= d.boxes[:, :2]).all() and d.boxes.min() >= 0 and d.boxes.max() <= 64


def test_train_mode_without_targets_is_an_error():
    with pytest.raises(ValueError, match="needs targets"):
        tiny_faster_rcnn(2).train()(torch.rand(1, 3, 64, 64))


def test_inference_module_rows():
    model = tiny_faster_rcnn(2)
    model.roi_heads.score_thresh = 0.0
    with torch.no_grad():
        out = model.inference_module()(torch.rand(2, 3, 64, 64))
    assert out.dets.shape[1] == 7
    with pytest.raises(ValueError, match="in-graph NMS"):
        model.inference_module(nms=False)


def test_registered_builder_validates_params():
    assert MODELS["faster_rcnn_fpn"].task == "detection"
    model = build_model(
        "faster_rcnn_fpn",
        2,
        {
            "backbone": "mobilenet_v3_small",
            "pretrained": False,
            "fpn_channels": 16,
            "representation_size": 32,
            "cosine_scale": 20.0,
        },
    )
    assert model.num_classes == 2 and model.roi_heads.box_predictor.scale == 20.0
    with pytest.raises(TypeError, match="unknown parameter"):
        build_model("faster_rcnn_fpn", 2, {"bogus": 1})
