"""The activation functions and their derivatives against their closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from convzoo import UserInputError
from convzoo.viz import functions


def test_derivatives_match_the_closed_forms() -> None:
    x, y, dy = functions.curve("sigmoid")
    assert torch.allclose(dy, y * (1 - y))  # the slide's s(1 - s)
    x, y, dy = functions.curve("tanh")
    assert torch.allclose(dy, (1 - y) * (1 + y))  # the slide's (1 - t)(1 + t)
    x, y, dy = functions.curve("relu")
    assert torch.equal(dy[x > 0], torch.ones_like(dy[x > 0]))
    assert torch.equal(dy[x < 0], torch.zeros_like(dy[x < 0]))
    x, y, dy = functions.curve("leaky_relu")
    neg = x < 0
    assert torch.allclose(y[neg], 0.01 * x[neg]) and torch.allclose(dy[neg], 0.01 + 0 * x[neg])
    x, y, dy = functions.curve("elu")
    assert torch.allclose(y[neg], torch.exp(x[neg]) - 1)
    assert torch.allclose(dy[neg], torch.exp(x[neg]))
    x, y, dy = functions.curve("selu")
    lam, alpha = 1.0507009873554805, 1.6732632423543772
    assert torch.allclose(y[neg], lam * alpha * (torch.exp(x[neg]) - 1))
    assert torch.allclose(dy[~neg & (x > 0)], torch.full_like(dy[x > 0], lam))


def test_selu_constants_are_torchs() -> None:
    # SELU(x) for x > 0 is lambda x; its limit at -inf is -lambda alpha
    t = torch.tensor([1.0, -50.0], dtype=torch.float64)
    out = nn.SELU()(t)
    assert math.isclose(out[0].item(), functions.SELU_LAMBDA, rel_tol=1e-12)
    assert math.isclose(out[1].item(), -functions.SELU_LAMBDA * functions.SELU_ALPHA,
                        rel_tol=1e-12)


def test_slide_formulas_differ_from_the_published_ones() -> None:
    x = torch.linspace(-3, -0.5, 6, dtype=torch.float64)
    for name, (_, slide) in functions.SLIDE_FORMULAS.items():
        published = functions.ACTIVATIONS[name].fn(x)
        assert not torch.allclose(slide(x), published), name
    # the slide's SELU grows without bound for x -> -inf where the real one saturates
    _, slide_selu = functions.SLIDE_FORMULAS["selu"]
    assert slide_selu(torch.tensor(-5.0)) > 100 > -functions.ACTIVATIONS["selu"].fn(
        torch.tensor(-5.0))


def test_bad_input() -> None:
    with pytest.raises(UserInputError):
        functions.curve("swish")
    with pytest.raises(UserInputError):
        functions.curve("relu", 1.0, -1.0)


def test_png(tmp_path, capsys) -> None:
    pytest.importorskip("matplotlib")
    from PIL import Image

    from convzoo.cli import main

    out = tmp_path / "f.png"
    assert main(["viz", "activation-functions", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    w, h = Image.open(out).size
    assert "selu" in said and f"{w}x{h} pixels" in said and w > 600 and h > 300
    assert main(["viz", "activations-functions", "--out", str(tmp_path / "g.png"),
                 "--no-slides"]) == 0
