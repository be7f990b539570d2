"""`convzoo list [PATTERN]`: the registered models with their parameters and MACs."""

from __future__ import annotations

import argparse
import json

from ..analysis.catalog_cache import rows_for
from ..errors import UserInputError
from ..registry import list_models
from ..tables import FORMATS, Table, human
from .common import emit, formatter

# analysis.profile.CONVENTIONS["macs"], here without importing the profiler
MACS = "multiply-accumulates of convolutions and fully connected layers"


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
    # the rows shipped in analysis/catalog.toml: profiling all the models takes ~14 s
    rows = [[r.name, f"{r.params:,}", human(r.macs), r.input, r.paper] for r in rows_for(names)]
    t = Table(f"{len(names)} models", ["model", "params", "MACs", "input", "paper"], rows,
              [f"MACs: {MACS}, at the default input"], align_right={1, 2})
    emit(json.dumps([dict(zip(t.columns, r)) for r in rows], indent=2)
         if args.format == "json" else t.render(args.format))
    return 0
