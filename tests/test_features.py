"""Feature extraction from named layers, and the linear probe."""

from __future__ import annotations

import pytest
import torch

import convzoo
from convzoo.evaluation.features import extract, linear_probe


def _batches(n: int = 6, size=(1, 32, 32)):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(3, *size, generator=g), torch.tensor([0, 1, 2]))
            for _ in range(n // 3)]


@pytest.mark.parametrize(("layer", "dim"), [
    (None, 84), ("stem", 6), ("stage1", 16), ("stage2", 120), ("stages.0.c3", 16),
    ("head.pre.f6", 84),
])
def test_feature_shapes_per_layer(layer, dim) -> None:
    model = convzoo.create_model("lenet5")
    feats, labels = extract(model, _batches(), layer)
    assert feats.shape == (6, dim) and labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert model.training  # the mode is restored


def test_default_layer_is_the_heads_input() -> None:
    model = convzoo.create_model("vgg11_bn", num_classes=10)
    x = torch.randn(2, 3, 32, 32)
    feats, _ = extract(model, [(x, torch.tensor([0, 1]))])
    assert feats.shape == (2, model.num_features)
    model.eval()
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(x), pre_logits=True)
    torch.testing.assert_close(feats, expected.flatten(1))


def test_unknown_layer() -> None:
    with pytest.raises(convzoo.UserInputError, match="no layer 'conv9'"):
        extract(convzoo.create_model("lenet5"), _batches(), "conv9")
    # the same lookup as the pictures: a near miss gets the close names
    with pytest.raises(convzoo.UserInputError, match="did you mean stem.c1"):
        extract(convzoo.create_model("lenet5"), _batches(), "stem.c11")


def test_linear_probe_separates_separable_features() -> None:
    g = torch.Generator().manual_seed(1)
    centers = torch.randn(3, 16, generator=g) * 3
    y = torch.arange(300) % 3
    x = centers[y] + torch.randn(300, 16, generator=g)
    res = linear_probe(x[:200], y[:200], x[200:], y[200:], 3)
    assert res["test_acc"] > 0.95
    noise = linear_probe(torch.randn(200, 16, generator=g), y[:200],
                         torch.randn(100, 16, generator=g), y[200:], 3)
    assert noise["test_acc"] < 0.6
