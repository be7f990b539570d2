"""`convzoo compare`: models side by side, and the evolution-of-architectures chart."""

from __future__ import annotations

import argparse
import json

from ..analysis.compare import COLUMNS, compare_models, sort_rows, train_only_note
from ..errors import UserInputError
from ..registry import get_entry, list_models
from ..tables import FORMATS, Table, human
from .common import emit, formatter

_NOTES = [
    "MACs: multiply-accumulates of convolutions and fully connected layers at the model's "
    "default input; activations: output elements of every layer that makes a new tensor, "
    "batch 1 (MB at float32)",
    "depth: Conv2d and Linear layers on the longest path from input to output",
    "top-1/top-5: published ImageNet accuracy (%); source: the paper, torchvision's weights, "
    "or the authors' released weights; --format json carries each row's citation and how it "
    "was measured (one crop, ten crops...), which differ between rows",
]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="models side by side: parameters, MACs, memory, depth, ImageNet accuracy",
        **formatter("examples:\n  convzoo compare alexnet vgg16 googlenet_tv resnet50\n"
                    "  convzoo compare --sort top1 --reverse --format markdown\n"
                    "  convzoo compare --plot evolution.png      # every model with a top-1"))
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="registered names or wildcards such as 'resnet*' (default: all)")
    p.add_argument("--sort", choices=COLUMNS, metavar="COLUMN",
                   help=f"sort by one of: {', '.join(COLUMNS)} (rows without a value last)")
    p.add_argument("--reverse", action="store_true", help="sort from the largest")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw top-1 against GMACs, marker area for parameters, every point "
                        "labelled")
    p.set_defaults(func=cmd_compare)


def _names(patterns: list[str]) -> list[str]:
    if not patterns:
        return list_models()
    names: list[str] = []
    for pat in patterns:
        if any(c in pat for c in "*?["):
            found = list_models(pat)
            if not found:
                raise UserInputError(f"no model matches {pat!r}")
        else:
            get_entry(pat)  # an unknown name: the registry's message with close names
            found = [pat]
        names += [n for n in found if n not in names]
    return names


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def cmd_compare(args: argparse.Namespace) -> int:
    rows = compare_models(_names(args.models))
    if args.sort:
        rows = sort_rows(rows, args.sort, args.reverse)
    if args.plot:
        from ..viz.evolution import draw_evolution

        shown = draw_evolution(rows, args.plot)
    extra = train_only_note(rows)
    notes = _NOTES + ([extra] if extra else [])
    if args.format == "json":
        emit(json.dumps({"rows": [r.to_dict() for r in rows], "notes": notes}, indent=2))
    else:
        cols = ["model", "params", "MACs", "activations (MB)", "depth", "input", "top-1",
                "top-5", "source"]
        body = [[r.model, f"{r.params:,}" if args.format == "table" else r.params,
                 human(r.macs) if args.format == "table" else r.macs,
                 f"{r.activation_mb:.1f}", r.depth, r.input, _pct(r.top1), _pct(r.top5),
                 r.source or "-"] for r in rows]
        emit(Table(f"{len(rows)} models", cols, body, notes,
                   align_right={1, 2, 3, 4, 6, 7}).render(args.format))
    if args.plot:
        emit(f"{args.plot}: {shown} of {len(rows)} models (those with a published top-1)")
    return 0
