import torch
import torch.nn.functional as F

from kdinspect.models.heads.cosine_head import CosineBoxPredictor, CosineSimilarity, LinearBoxPredictor


def test_cosine_similarity_is_cosine_and_scale_invariant():
    torch.manual_seed(0)
    layer = CosineSimilarity(8, 4).eval()
    x = torch.randn(5, 8)
    cos = layer(x)
    expected = F.cosine_similarity(x[:, None, :], layer.weight[None, :, :], dim=-1)
    torch.testing.assert_close(cos, expected, atol=1e-3, rtol=0)  # eps=1e-5 on norms ~0.03
    torch.testing.assert_close(layer(3.0 * x), cos, atol=1e-5, rtol=1e-5)
    assert cos.abs().max() <= 1.0 + 1e-5


def test_cosine_weights_are_normalised_in_training_only():
    torch.manual_seed(0)
    layer = CosineSimilarity(8, 4)
    with torch.no_grad():
        layer.weight.mul_(5.0)
    before = layer.weight.detach().clone()
    layer.eval()
    out_eval = layer(torch.randn(2, 8))
    assert torch.equal(layer.weight, before)  # inference never mutates parameters
    layer.train()
    layer(torch.randn(2, 8))
    torch.testing.assert_close(layer.weight.norm(dim=1), torch.ones(4), atol=1e-4, rtol=0)
    assert out_eval.shape == (2, 4)


def test_cosine_predictor_applies_scale_after_the_tap():
    torch.manual_seed(0)
    pred = CosineBoxPredictor(16, 4, scale=20.0).eval()
    x = torch.randn(6, 16, 1, 1)
    scores, deltas = pred(x)
    torch.testing.assert_close(scores, 20.0 * pred.cls_score(x.flatten(1)))
    assert scores.shape == (6, 4) and deltas.shape == (6, 16)


def test_linear_predictor_shapes():
    pred = LinearBoxPredictor(16, 3)
    scores, deltas = pred(torch.randn(2, 16))
    assert scores.shape == (2, 3) and deltas.shape == (2, 12)
