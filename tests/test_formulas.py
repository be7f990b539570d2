"""The lecture's conv arithmetic (seed 003), and the formulas against real modules."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from convzoo import UserInputError
from convzoo.analysis import formulas


@pytest.mark.parametrize(("n", "f", "s", "p", "out"), [
    (7, 3, 1, 0, 5), (7, 3, 2, 0, 3), (7, 3, 1, 1, 7), (32, 5, 1, 2, 32),
    (227, 11, 4, 0, 55), (55, 3, 2, 0, 27),  # AlexNet CONV1, then POOL1
])
def test_lecture_output_sizes(n, f, s, p, out) -> None:
    assert formulas.output_size(n, f, s, p) == out


def test_filter_that_does_not_fit() -> None:
    with pytest.raises(UserInputError) as e:
        formulas.output_size(7, 3, 3)
    assert str(e.value) == ("a 3x3 filter with stride 3 does not fit a 7x7 input: "
                            "(7-3)/3+1 = 2.33")
    assert formulas.output_size(7, 3, 3, strict=False) == 2
    with pytest.raises(UserInputError, match="does not fit a 2x2 input"):
        formulas.output_size(2, 3)


def test_ten_5x5_filters_on_32x32x3() -> None:
    assert formulas.conv_params(5, 3, 1) == 76
    assert formulas.conv_params(5, 3, 10) == 760
    assert formulas.activations(32, 32, 10) == 10_240


def test_alexnet_conv1_weights() -> None:
    assert formulas.conv_params(11, 3, 96, bias=False) == 34_848
    assert formulas.conv_macs(55, 55, 11, 3, 96) == 55 * 55 * 34_848


def test_grouped_conv_and_linear() -> None:
    # AlexNet's conv2: each tower sees 48 of the 96 maps
    assert formulas.conv_params(5, 96, 256, groups=2) == 5 * 5 * 48 * 256 + 256
    assert formulas.linear_params(4096, 1000) == 4_097_000
    with pytest.raises(UserInputError):
        formulas.conv_params(3, 5, 4, groups=2)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), f=st.integers(1, 7), s=st.integers(1, 4), p=st.integers(0, 3),
       c=st.integers(1, 4), k=st.integers(1, 5))
def test_formulas_agree_with_real_conv(n, f, s, p, c, k) -> None:
    conv = nn.Conv2d(c, k, f, s, p)
    params = sum(t.numel() for t in conv.parameters())
    assert formulas.conv_params(f, c, k) == params
    if n + 2 * p < f:
        with pytest.raises(UserInputError):
            formulas.output_size(n, f, s, p, strict=False)
        return
    out = conv(torch.zeros(1, c, n, n))
    assert formulas.output_size(n, f, s, p, strict=False) == out.shape[-1]
