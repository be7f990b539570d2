"""The closed forms the lectures teach, for checking by hand what the profiler measures.

Sizes follow the lecture's notation: an N x N input, F x F filters, stride S, zero padding P,
C_in input channels and K filters.
"""

from __future__ import annotations

from fractions import Fraction

from ..errors import UserInputError


def _fmt(x: Fraction) -> str:
    return str(int(x)) if x.denominator == 1 else f"{float(x):.2f}"


def output_size(
    n: int, f: int, stride: int = 1, pad: int = 0, dilation: int = 1, *,
    ceil_mode: bool = False, strict: bool = True, kind: str = "filter",
) -> int:
    """(N - F + 2P) / S + 1 for one spatial side.

    With `strict` (the lecture's rule) a filter that does not tile the padded input exactly is
    an error; otherwise the result is floored (or ceiled), as frameworks do.
    """
    for label, v, lo in (("input", n, 1), ("filter", f, 1), ("stride", stride, 1),
                         ("padding", pad, 0), ("dilation", dilation, 1)):
        if v < lo:
            raise UserInputError(f"{label} must be at least {lo}, got {v}")
    span = dilation * (f - 1) + 1
    pad_txt = f"+2*{pad}" if pad else ""
    expr = f"({n}-{span}{pad_txt})/{stride}+1"
    exact = Fraction(n - span + 2 * pad, stride) + 1
    what = f"a {f}x{f} {kind}" + (f" with stride {stride}" if stride != 1 else "")
    if n + 2 * pad < span:
        raise UserInputError(
            f"{what} does not fit a {n}x{n} input"
            f"{f' padded by {pad}' if pad else ''}: {expr} = {_fmt(exact)}"
        )
    if strict and exact.denominator != 1:
        raise UserInputError(f"{what} does not fit a {n}x{n} input: {expr} = {_fmt(exact)}")
    q, r = divmod(n - span + 2 * pad, stride)
    return q + 1 + (1 if ceil_mode and r else 0)


def conv_params(f: int, c_in: int, k: int, *, bias: bool = True, groups: int = 1) -> int:
    """(F * F * C_in / groups) * K weights, plus K biases."""
    if c_in % groups or k % groups:
        raise UserInputError(f"{groups} groups do not divide {c_in} inputs and {k} filters")
    return f * f * (c_in // groups) * k + (k if bias else 0)


def linear_params(n_in: int, n_out: int, *, bias: bool = True) -> int:
    return n_in * n_out + (n_out if bias else 0)


def conv_macs(out_h: int, out_w: int, f: int, c_in: int, k: int, *, groups: int = 1) -> int:
    """Multiply-accumulates: one per weight per output position."""
    return out_h * out_w * conv_params(f, c_in, k, bias=False, groups=groups)


def activations(h: int, w: int, c: int) -> int:
    """Values in an H x W x C output: the lecture's 'memory' column."""
    return h * w * c
