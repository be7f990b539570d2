"""`convzoo calc conv|pool`: the lecture's layer arithmetic, by hand."""

from __future__ import annotations

import argparse

from ..analysis import formulas
from .common import emit, formatter


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calc", help="output size and parameters of one layer, by the formulas")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, example in (
        ("conv", "convzoo calc conv --input 32 --filter 5 --stride 1 --pad 2 "
                 "--in-channels 3 --out-channels 10"),
        ("pool", "convzoo calc pool --input 55 --filter 3 --stride 2 --in-channels 96"),
    ):
        q = kinds.add_parser(kind, help=f"a {kind} layer", **formatter(f"example:\n  {example}"))
        q.add_argument("--input", type=int, required=True, metavar="N", help="input side N")
        q.add_argument("--filter", type=int, required=True, metavar="F", help="filter side F")
        q.add_argument("--stride", type=int, default=1, metavar="S")
        q.add_argument("--pad", type=int, default=0, metavar="P")
        q.add_argument("--in-channels", type=int, default=None, metavar="C")
        if kind == "conv":
            q.add_argument("--out-channels", type=int, default=None, metavar="K")
            q.add_argument("--no-bias", action="store_true")
        q.set_defaults(func=cmd_calc)


def cmd_calc(args: argparse.Namespace) -> int:
    n, f, s, p = args.input, args.filter, args.stride, args.pad
    out = formulas.output_size(n, f, s, p, kind="filter" if args.kind == "conv" else "window")
    pad = f"+2*{p}" if p else ""
    lines = [f"output side: ({n}-{f}{pad})/{s}+1 = {out}"]
    c = args.in_channels
    if args.kind == "pool":
        if c:
            lines.append(f"output: {out}x{out}x{c} = {formulas.activations(out, out, c):,} "
                         "values; a pooling layer has no parameters")
    elif c:
        bias = not args.no_bias
        per = formulas.conv_params(f, c, 1, bias=bias)
        b = " + 1 bias" if bias else ""
        lines.append(f"parameters per filter: {f}*{f}*{c}{b} = {per}")
        if args.out_channels:
            k = args.out_channels
            total = formulas.conv_params(f, c, k, bias=bias)
            lines.append(f"output: {out}x{out}x{k} = {formulas.activations(out, out, k):,} "
                         "values")
            lines.append(f"parameters in all: {per}*{k} = {total:,}")
            lines.append(f"MACs: {out}*{out}*{f}*{f}*{c}*{k} = "
                         f"{formulas.conv_macs(out, out, f, c, k):,}")
    emit("\n".join(lines))
    return 0
