"""The closed forms the lectures teach, for checking by hand what the profiler measures.

Sizes follow the lecture's notation: an N x N input, F x F filters, stride S, zero padding P,
C_in input channels and K filters.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def fitting_paddings(n: int, f: int, stride: int = 1, dilation: int = 1) -> list[tuple[int, int]]:
    """Every padding P from 0 to F-1 with which the filter tiles the input exactly, with the
    output side it gives: [(P, output side), ...]."""
    for label, v, lo in (("input", n, 1), ("filter", f, 1), ("stride", stride, 1),
                         ("dilation", dilation, 1)):
        if v < lo:
            raise UserInputError(f"{label} must be at least {lo}, got {v}")
    span = dilation * (f - 1) + 1
    return [(p, (n - span + 2 * p) // stride + 1) for p in range(f)
            if n + 2 * p >= span and (n - span + 2 * p) % stride == 0]


@dataclass(frozen=True)
class StackLayer:
    """One row of a stack: its filter (height, width), stride and padding, and the receptive
    field, jump and start of its output along each axis."""

    kernel: tuple[int, int]
    stride: int
    pad: int
    rf: tuple[int, int]
    jump: int
    start: tuple[Fraction, Fraction]


def stack_fields(layers: list[tuple[tuple[int, int], int, int]]) -> list[StackLayer]:
    """The receptive field of a stack of (kernel, stride, padding) layers, layer by layer:
    r += (F - 1) * j; start += ((F - 1) / 2 - P) * j; j *= S, from r = 1, j = 1, start = 0
    (the centre of the first input pixel)."""
    r, j, start = [1, 1], 1, [Fraction(0), Fraction(0)]
    out = []
    for (kh, kw), s, p in layers:
        for label, v, lo in (("filter", min(kh, kw), 1), ("stride", s, 1), ("padding", p, 0)):
            if v < lo:
                raise UserInputError(f"{label} must be at least {lo}, got {v}")
        for i, k in enumerate((kh, kw)):
            start[i] += (Fraction(k - 1, 2) - p) * j
            r[i] += (k - 1) * j
        j *= s
        out.append(StackLayer((kh, kw), s, p, (r[0], r[1]), j, (start[0], start[1])))
    return out


@dataclass(frozen=True)
class Cascade:
    """One F x F convolution against the stack of 3x3 ones that sees as far, C channels in
    and out (weights without biases)."""

    filter: int
    layers: int  # 3x3 layers in the stack: (F - 1) / 2
    field: int  # of both: F = 1 + 2 * layers
    big_weights_per_c2: int  # F^2
    small_weights_per_c2: int  # 9 * layers
    nonlinearities: tuple[int, int]  # (1, layers)


def cascade(f: int) -> Cascade:
    """The lecture's 'why a cascade of convolutions': F x F against (F - 1) / 2 layers of 3x3."""
    if f < 3:
        raise UserInputError(f"the filter must be at least 3 to compare with 3x3 layers, got {f}")
    if f % 2 == 0:
        raise UserInputError(f"a {f}x{f} field cannot be built of 3x3 layers: each adds 2, so "
                             "they give 3, 5, 7, ...; pick an odd filter")
    n = (f - 1) // 2
    field = stack_fields([((3, 3), 1, 1)] * n)[-1].rf[0]
    return Cascade(f, n, field, f * f, 9 * n, (1, n))
