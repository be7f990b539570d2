"""Highway networks: the gate formula, the negative gate bias, and gradients at depth."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import convzoo
from convzoo.layers import Highway, HighwayConv2d, HighwayLinear


def _force_gate(layer: Highway, bias: float) -> None:
    """Make T(x) = sigmoid(bias) for every input."""
    with torch.no_grad():
        layer.t.weight.zero_()
        layer.t.bias.fill_(bias)


@pytest.mark.parametrize("layer,shape", [
    (HighwayLinear(16), (4, 16)),
    (HighwayConv2d(6, 3), (2, 6, 5, 5)),
])
def test_gate_formula(layer: Highway, shape: tuple[int, ...]) -> None:
    x = torch.randn(*shape)
    h = torch.relu(layer.h(x)).detach()
    _force_gate(layer, -1e4)  # T = 0: carry only
    assert torch.equal(layer(x), x)
    _force_gate(layer, 1e4)  # T = 1: the plain layer H
    assert torch.equal(layer(x), h)
    _force_gate(layer, 0.0)  # T = 1/2: the average
    torch.testing.assert_close(layer(x), 0.5 * h + 0.5 * x)


@pytest.mark.parametrize("name", ["highway_fc", "highway_conv"])
def test_gate_bias_starts_negative(name: str) -> None:
    model = convzoo.create_model(name)
    layers = [m for m in model.modules() if isinstance(m, Highway)]
    assert len(layers) == 9
    assert all(torch.all(m.t.bias == -2.0) for m in layers)
    other = convzoo.create_model(name, gate_bias=-3.0)
    assert all(torch.all(m.t.bias == -3.0) for m in other.modules() if isinstance(m, Highway))
    # so the net starts out mostly carrying its input: T is small on average
    x = torch.randn(2, *model.default_input_size)
    first = layers[0]
    seen = {}
    first.register_forward_hook(lambda m, a, out: seen.update(t=m.transform_gate(a[0])))
    model(x)
    assert seen["t"].mean() < 0.3


def _gated_and_plain(model: nn.Module) -> tuple[int, int]:
    gated = sum(isinstance(m, Highway) for m in model.modules())
    plain = sum(isinstance(m, (nn.Linear, nn.Conv2d)) for n, m in model.named_modules()
                if n.startswith("stages.") and ".h" not in n and ".t" not in n
                and "widen" not in n)
    return gated, plain


@pytest.mark.parametrize("family,depth", [("fc", 50), ("conv", 12)])
def test_same_depth_comparable_parameters(family: str, depth: int) -> None:
    highway = convzoo.create_model(f"highway_{family}", depth=depth)
    plain = convzoo.create_model(f"plain_{family}", depth=depth)
    assert _gated_and_plain(highway) == (depth, 0)
    assert _gated_and_plain(plain) == (0, depth)
    assert not any(isinstance(m, nn.Sigmoid) for m in plain.modules())
    n_h = sum(p.numel() for p in highway.parameters())
    n_p = sum(p.numel() for p in plain.parameters())
    assert 0.8 < n_h / n_p < 1.25, (n_h, n_p)


def test_paper_widths_give_about_5000_parameters_per_layer() -> None:
    highway = convzoo.create_model("highway_fc")
    plain = convzoo.create_model("plain_fc")
    h_layer = next(m for m in highway.modules() if isinstance(m, Highway))
    p_layer = plain.stages[0][0]
    assert sum(p.numel() for p in h_layer.parameters()) == 2 * (50 * 50 + 50)
    assert sum(p.numel() for p in p_layer.parameters()) == 71 * 71 + 71


def _first_layer_grad(name: str, depth: int, seed: int) -> float:
    torch.manual_seed(seed)
    model = convzoo.create_model(name, depth=depth)
    x = torch.randn(64, 1, 28, 28)
    y = torch.randint(0, 10, (64,))
    F.cross_entropy(model(x), y).backward()
    return model.stem.fc.weight.grad.norm().item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradients_reach_the_first_layer_of_a_deep_highway_net(seed: int) -> None:
    """At 50 layers the plain net's first-layer gradient has all but vanished (norm about 1e-7);
    the highway net's stays orders of magnitude larger (about 1e-2)."""
    highway = _first_layer_grad("highway_fc", 50, seed)
    plain = _first_layer_grad("plain_fc", 50, seed)
    assert highway > 1e-4
    assert highway > 100 * plain, (highway, plain)


def test_highway_fc_sizes_and_stages() -> None:
    model = convzoo.create_model("highway_fc", depth=25, width=32, image_size=8, in_channels=3)
    assert [len(s) for s in model.stages] == [10, 10, 5]
    assert model.default_input_size == (3, 8, 8)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    assert model.num_features == 32
    conv = convzoo.create_model("highway_conv", depth=7)
    assert [len(s.layers) for s in conv.stages] == [3, 2, 2]
    assert conv.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 128, 8, 8)
