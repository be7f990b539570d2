"""`convzoo list [PATTERN]`: the registered models with their parameters and MACs."""

from __future__ import annotations

import argparse
import json

from ..analysis.profile import CONVENTIONS
from ..errors import UserInputError
from ..registry import list_models
from ..tables import FORMATS, Table, human
from .common import emit, formatter
from .summary import profile_at


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="registered models with parameters and MACs",
                       **formatter("example:\n  convzoo list 'resnet*'"))
    p.add_argument("pattern", nargs="?", help="wildcard, e.g. 'vgg*' (plain text matches anywhere)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not names:
        raise UserInputError(f"no model matches {args.pattern!r}")
    rows = []
    for n in names:
        model, prof = profile_at(n, None, 1)
        size = "x".join(map(str, prof.input_size))
        rows.append([n, f"{prof.total_params:,}", human(prof.total_macs), size,
                     model.paper.short])
    t = Table(f"{len(names)} models", ["model", "params", "MACs", "input", "paper"], rows,
              [f"MACs: {CONVENTIONS['macs']}, at the default input"], align_right={1, 2})
    emit(json.dumps([dict(zip(t.columns, r)) for r in rows], indent=2)
         if args.format == "json" else t.render(args.format))
    return 0
