"""`convzoo calc conv|pool|rf|cascade`: the lecture's layer arithmetic, by hand."""

from __future__ import annotations

import argparse
import json
import re
from fractions import Fraction

from ..analysis import formulas
from ..errors import UserInputError
from ..tables import FORMATS, Table
from .common import emit, formatter


def _pad_arg(text: str) -> int | str:
    if text.lower() == "any":
        return "any"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid padding {text!r}: a whole number, or 'any' to list every one that fits"
        ) from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calc", help="layer arithmetic by the formulas: sizes, parameters, "
                                    "receptive fields, why a cascade of 3x3")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, example in (
        ("conv", "convzoo calc conv --input 32 --filter 5 --stride 1 --pad 2 "
                 "--in-channels 3 --out-channels 10\n"
                 "  convzoo calc conv --input 7 --filter 3 --stride 3 --pad any"),
        ("pool", "convzoo calc pool --input 55 --filter 3 --stride 2 --in-channels 96"),
    ):
        q = kinds.add_parser(kind, help=f"a {kind} layer", **formatter(f"examples:\n  {example}"))
        q.add_argument("--input", type=int, required=True, metavar="N", help="input side N")
        q.add_argument("--filter", type=int, required=True, metavar="F", help="filter side F")
        q.add_argument("--stride", type=int, default=1, metavar="S")
        q.add_argument("--pad", type=_pad_arg, default=0, metavar="P",
                       help="zero padding (default 0); 'any' lists every P from 0 to F-1 "
                            "that fits and the output side of each")
        q.add_argument("--in-channels", type=int, default=None, metavar="C")
        if kind == "conv":
            q.add_argument("--out-channels", type=int, default=None, metavar="K")
            q.add_argument("--no-bias", action="store_true")
        q.set_defaults(func=cmd_calc)

    q = kinds.add_parser(
        "rf", help="receptive field, jump and start of a stack of layers",
        **formatter("examples:\n  convzoo calc rf 3x3/1,3x3/1,2x2/2\n"
                    "  convzoo calc rf 11x11/4,3x3/2,5x5/1/2,3x3/2   # AlexNet to POOL2\n"
                    "each layer is FxF/S or FxF/S/P (filter, stride, padding; S and P "
                    "default to 1 and 0)"))
    q.add_argument("stack", metavar="STACK", help="comma-separated layers: FxF/S[/P]")
    q.add_argument("--format", choices=FORMATS, default="table")
    q.set_defaults(func=cmd_rf)

    q = kinds.add_parser(
        "cascade", help="why a cascade of 3x3 convolutions: one FxF layer against 3x3 layers",
        **formatter("examples:\n  convzoo calc cascade --filter 7 --channels 64\n"
                    "  convzoo calc cascade            # 5x5 and 7x7, per C^2"))
    q.add_argument("--filter", type=int, action="append", metavar="F",
                   help="odd filter side (default: 5 and 7; repeat for several)")
    q.add_argument("--channels", type=int, metavar="C",
                   help="channels in and out of every layer (default: counts per C^2)")
    q.add_argument("--format", choices=FORMATS, default="table")
    q.set_defaults(func=cmd_cascade)


def _at_least_one(value: int | None, what: str) -> None:
    if value is not None and value < 1:
        raise UserInputError(f"{what} must be at least 1, got {value}")


def cmd_calc(args: argparse.Namespace) -> int:
    n, f, s, p = args.input, args.filter, args.stride, args.pad
    _at_least_one(args.in_channels, "--in-channels")
    _at_least_one(getattr(args, "out_channels", None), "--out-channels")
    kind = "filter" if args.kind == "conv" else "window"
    if p == "any":
        return _any_padding(n, f, s, kind)
    out = formulas.output_size(n, f, s, p, kind=kind)
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


def _any_padding(n: int, f: int, s: int, kind: str) -> int:
    fits = formulas.fitting_paddings(n, f, s)
    what = f"a {f}x{f} {kind}" + (f" with stride {s}" if s != 1 else "")
    if not fits:
        raise UserInputError(f"no padding from 0 to {f - 1} lets {what} fit a {n}x{n} input: "
                             f"(N-F+2P) must be a multiple of {s}; try another stride")
    lines = [f"paddings from 0 to {f - 1} with which {what} fits a {n}x{n} input:"]
    lines += [f"  P={p}: ({n}-{f}+2*{p})/{s}+1 = {out}, output {out}x{out}" for p, out in fits]
    same = [p for p, out in fits if out == -(-n // s)]
    if same:
        lines.append(f"P={same[0]} keeps the side at ceil(N/S) = {-(-n // s)}, as 'same' "
                     "padding does")
    emit("\n".join(lines))
    return 0


_LAYER = re.compile(r"^(\d+)(?:x(\d+))?(?:/(\d+))?(?:/(\d+))?$")


def parse_stack(text: str) -> list[tuple[tuple[int, int], int, int]]:
    """'3x3/1,3x3/1,2x2/2' -> [((3, 3), 1, 0), ((3, 3), 1, 0), ((2, 2), 2, 0)]."""
    layers = []
    for item in (t.strip().lower() for t in text.split(",")):
        m = _LAYER.match(item)
        if not m:
            raise UserInputError(f"malformed layer {item!r} in {text!r}: write FxF/S or FxF/S/P, "
                                 "e.g. 3x3/1,3x3/1,2x2/2")
        fh = int(m.group(1))
        fw = int(m.group(2)) if m.group(2) else fh
        s = int(m.group(3)) if m.group(3) else 1
        p = int(m.group(4)) if m.group(4) else 0
        if min(fh, fw, s) < 1:
            raise UserInputError(f"layer {item!r}: filter and stride must be at least 1")
        layers.append(((fh, fw), s, p))
    return layers


def _frac(x: Fraction) -> str:
    return str(int(x)) if x.denominator == 1 else f"{float(x):g}"


def _side(a: int | Fraction, b: int | Fraction) -> str:
    return _frac(Fraction(a)) if a == b else f"{_frac(Fraction(a))}x{_frac(Fraction(b))}"


def cmd_rf(args: argparse.Namespace) -> int:
    layers = parse_stack(args.stack)
    rows = formulas.stack_fields(layers)
    table_rows = [[i + 1, f"{r.kernel[0]}x{r.kernel[1]}", r.stride, r.pad,
                   _side(*r.rf), r.jump, _side(*r.start)] for i, r in enumerate(rows)]
    notes = ["receptive field r, jump j (effective stride: input pixels between neighbouring "
             "outputs) and start (centre of the first output's field; input pixel centres at "
             "0, 1, ...); r += (F-1)*j, start += ((F-1)/2 - P)*j, then j *= S",
             f"the last layer sees {_side(*rows[-1].rf)} input pixels"]
    t = Table("receptive field of the stack", ["layer", "filter", "stride", "pad", "rf", "jump",
                                               "start"], table_rows, notes,
              align_right={0, 2, 3, 4, 5, 6})
    if args.format == "json":
        emit(json.dumps({"layers": [
            {"filter": list(r.kernel), "stride": r.stride, "pad": r.pad, "rf": list(r.rf),
             "jump": r.jump, "start": [float(x) for x in r.start]} for r in rows],
            "notes": notes}, indent=2))
    else:
        emit(t.render(args.format))
    return 0


def cmd_cascade(args: argparse.Namespace) -> int:
    filters = args.filter or [5, 7]
    c = args.channels
    _at_least_one(c, "--channels")
    results = [formulas.cascade(f) for f in filters]
    if args.format == "json":
        emit(json.dumps([_cascade_dict(r, c) for r in results], indent=2))
        return 0
    if args.format != "table":
        rows = []
        for r in results:
            for d in _cascade_dict(r, c)["layouts"]:
                rows.append([d["layout"], d["field"], d["weights_per_c2"],
                             d.get("weights", ""), d["nonlinearities"]])
        emit(Table("one FxF convolution against a cascade of 3x3", ["layout", "field",
                   "weights / C^2", "weights", "non-linearities"], rows).render(args.format))
        return 0
    blocks = []
    for r in results:
        big, small, n = r.big_weights_per_c2, r.small_weights_per_c2, r.layers
        if c is None:
            w_big, w_small = f"{big}C^2", f"{small}C^2"
        else:
            w_big, w_small = f"{big}*{c}^2 = {big * c * c:,}", f"{small}*{c}^2 = {small * c * c:,}"
        blocks.append("\n".join([
            f"one {r.filter}x{r.filter} layer against {n} layers of 3x3 (stride 1, "
            f"{'C' if c is None else c} channels in and out):",
            f"  receptive field: {r.filter}x{r.filter} against 1+2*{n} = {r.field}x{r.field}: "
            "the same",
            f"  weights: {r.filter}*{r.filter}*C^2 = {w_big} against {n}*3*3*C^2 = {w_small}: "
            f"{100 * (1 - small / big):.0f}% fewer",
            f"  non-linearities: {r.nonlinearities[0]} against {r.nonlinearities[1]}: the "
            "stack can draw more complex functions of the same pixels",
            f"  MACs per output position: as the weights, {big} against {small} per C^2",
        ]))
    emit("\n\n".join(blocks) + "\n(weights without biases; biases add C per layer)")
    return 0


def _cascade_dict(r: formulas.Cascade, c: int | None) -> dict:
    def layout(name: str, per: int, nl: int) -> dict:
        d = {"layout": name, "field": r.field, "weights_per_c2": per, "nonlinearities": nl}
        if c is not None:
            d["weights"] = per * c * c
        return d

    return {"filter": r.filter, "channels": c, "layouts": [
        layout(f"1 x {r.filter}x{r.filter}", r.big_weights_per_c2, r.nonlinearities[0]),
        layout(f"{r.layers} x 3x3", r.small_weights_per_c2, r.nonlinearities[1])]}
