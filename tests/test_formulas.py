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


def test_paddings_that_fit() -> None:
    # the lecture's 7x7 input with a 3x3 filter at stride 3: only P=1 fits, giving 3x3
    assert formulas.fitting_paddings(7, 3, 3) == [(1, 3)]
    # F=5, S=2 ("P = ? (whatever fits)"): on a 7x7 input every P fits, (7-5+2P)/2+1 = 2..6
    assert formulas.fitting_paddings(7, 5, 2) == [(0, 2), (1, 3), (2, 4), (3, 5), (4, 6)]
    # on an 8x8 input none does: 8-5+2P is odd
    assert formulas.fitting_paddings(8, 5, 2) == []


def test_stack_fields_by_hand() -> None:
    rows = formulas.stack_fields([((3, 3), 1, 0), ((3, 3), 1, 0), ((2, 2), 2, 0)])
    assert [r.rf[0] for r in rows] == [3, 5, 6]
    assert [r.jump for r in rows] == [1, 1, 2]
    assert [float(r.start[0]) for r in rows] == [1.0, 2.0, 2.5]
    wide = formulas.stack_fields([((1, 7), 1, 0), ((7, 1), 1, 0)])
    assert wide[-1].rf == (7, 7) and wide[0].rf == (1, 7)


@pytest.mark.parametrize("f", [5, 7, 9])
def test_cascade_of_3x3(f) -> None:
    c = formulas.cascade(f)
    n = (f - 1) // 2
    assert c.layers == n and c.field == f
    assert c.big_weights_per_c2 == f * f and c.small_weights_per_c2 == 9 * n
    assert c.nonlinearities == (1, n)
    for bad in (2, 6):
        with pytest.raises(UserInputError):
            formulas.cascade(bad)


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    from convzoo.cli import main

    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_calc_cascade_cli(capsys) -> None:
    rc, out, _ = _cli(capsys, "calc", "cascade", "--filter", "7", "--channels", "64")
    assert rc == 0
    assert f"{49 * 64 * 64:,}" in out and f"{27 * 64 * 64:,}" in out
    assert "7x7 against 1+2*3 = 7x7" in out and "non-linearities: 1 against 3" in out
    rc, out, _ = _cli(capsys, "calc", "cascade", "--format", "json")
    import json

    got = {d["filter"]: d for d in json.loads(out)}
    assert sorted(got) == [5, 7]
    assert [x["weights_per_c2"] for x in got[5]["layouts"]] == [25, 18]
    assert [x["nonlinearities"] for x in got[5]["layouts"]] == [1, 2]
    rc, _, err = _cli(capsys, "calc", "cascade", "--filter", "6")
    assert rc == 2 and len(err.strip().splitlines()) == 1


def test_calc_pad_any_cli(capsys) -> None:
    rc, out, _ = _cli(capsys, "calc", "conv", "--input", "7", "--filter", "3", "--stride", "3",
                      "--pad", "any")
    assert rc == 0
    assert "P=1: (7-3+2*1)/3+1 = 3, output 3x3" in out
    assert "P=0" not in out and "P=2" not in out
    rc, _, err = _cli(capsys, "calc", "conv", "--input", "7", "--filter", "3", "--stride", "3")
    assert rc == 2 and "(7-3)/3+1 = 2.33" in err


def test_calc_rf_cli(capsys) -> None:
    import json

    rc, out, _ = _cli(capsys, "calc", "rf", "11x11/4,3x3/2,5x5/1/2,3x3/2", "--format", "json")
    assert rc == 0
    assert [r["rf"][0] for r in json.loads(out)["layers"]] == [11, 19, 51, 67]
    rc, _, err = _cli(capsys, "calc", "rf", "3x3/1,oops")
    assert rc == 2 and "oops" in err


@pytest.mark.parametrize("argv", [
    ["conv", "--input", "32", "--filter", "5", "--in-channels", "-3", "--out-channels", "10"],
    ["conv", "--input", "32", "--filter", "5", "--in-channels", "3", "--out-channels", "0"],
    ["conv", "--input", "0", "--filter", "5"],
    ["conv", "--input", "32", "--filter", "-5"],
    ["pool", "--input", "55", "--filter", "3", "--stride", "2", "--in-channels", "0"],
    ["cascade", "--channels", "0"],
])
def test_calc_rejects_nonpositive_sizes(capsys, argv) -> None:
    rc, out, err = _cli(capsys, "calc", *argv)
    assert rc == 2 and not out
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
