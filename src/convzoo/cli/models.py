"""`convzoo list` and `convzoo summary`."""

from __future__ import annotations

import argparse
import json

import torch

from ..analysis.paper import paper_table
from ..analysis.profile import CONVENTIONS, Profile, profile_model
from ..errors import UserInputError
from ..registry import create_model, get_entry, list_models
from ..tables import FORMATS, Table, human
from .common import emit, formatter, size_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="registered models with parameters and MACs",
                       **formatter("example:\n  convzoo list 'resnet*'"))
    p.add_argument("pattern", nargs="?", help="wildcard, e.g. 'vgg*' (plain text matches anywhere)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "summary", help="layer table: shapes, parameters, MACs, activations",
        **formatter("examples:\n  convzoo summary vgg16 --convention paper\n"
                    "  convzoo summary resnet50 --input 3x160x160 --format json"))
    p.add_argument("model")
    p.add_argument("--input", type=size_arg, metavar="CxHxW",
                   help="input size (default: the model's own)")
    p.add_argument("--batch", type=int, default=1, metavar="N")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--convention", choices=("convzoo", "paper"), default="convzoo",
                   help="'paper': the table in the paper's (or lecture's) own units")
    p.set_defaults(func=cmd_summary)


def _meta_model(name: str, **kw) -> torch.nn.Module:
    with torch.device("meta"):
        return create_model(name, **kw)


def _profile(name: str, size: tuple[int, int, int] | None, batch: int, **kw) -> tuple:
    model = _meta_model(name, **kw)
    default = tuple(model.default_input_size)
    if size is None:
        size = default
    elif size[0] == 0:
        size = (default[0], size[1], size[2])
    elif size[0] != default[0]:
        model = _meta_model(name, in_channels=size[0], **kw)
    return model, profile_model(model, size, batch, name)


def cmd_list(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not names:
        raise UserInputError(f"no model matches {args.pattern!r}")
    rows = []
    for n in names:
        model, prof = _profile(n, None, 1)
        size = "x".join(map(str, prof.input_size))
        rows.append([n, f"{prof.total_params:,}", human(prof.total_macs), size,
                     model.paper.short])
    t = Table(f"{len(names)} models", ["model", "params", "MACs", "input", "paper"], rows,
              [f"MACs: {CONVENTIONS['macs']}, at the default input"], align_right={1, 2})
    emit(json.dumps([dict(zip(t.columns, r)) for r in rows], indent=2)
         if args.format == "json" else t.render(args.format))
    return 0


def profile_table(prof: Profile) -> Table:
    rows = [[r.name, r.type, "x".join(map(str, r.output_shape[1:])), f"{r.params:,}",
             f"{r.weights:,}", f"{r.macs:,}", f"{r.activations:,}"] for r in prof.layers]
    notes = [
        f"total parameters {prof.total_params:,} (trainable {prof.trainable_params:,}; "
        f"without biases {prof.total_weights:,})",
        f"MACs {prof.total_macs:,} ({human(prof.total_macs)}); FLOPs = 2 x MACs = "
        f"{human(prof.flops)}",
        f"activations {prof.activation_elements:,} elements: "
        f"{human(prof.activation_bytes(torch.float32), 'B')} fp32, "
        f"{human(prof.activation_bytes(torch.bfloat16), 'B')} bf16 (batch {prof.batch_size})",
        f"conventions: MACs are {CONVENTIONS['macs']}; activations are "
        f"{CONVENTIONS['activations']}",
    ]
    size = "x".join(map(str, prof.input_size))
    return Table(f"{prof.model} at {size}, batch {prof.batch_size}",
                 ["layer", "type", "output", "params", "weights", "MACs", "activations"],
                 rows, notes, totals=["total", "", "", f"{prof.total_params:,}",
                                      f"{prof.total_weights:,}", f"{prof.total_macs:,}",
                                      f"{prof.activation_elements:,}"],
                 align_right={3, 4, 5, 6})


def cmd_summary(args: argparse.Namespace) -> int:
    get_entry(args.model)
    kw = {} if args.num_classes is None else {"num_classes": args.num_classes}
    model, prof = _profile(args.model, args.input, args.batch, **kw)
    if args.convention == "paper":
        emit(paper_table(model, prof).render(args.format))
    elif args.format == "json":
        emit(json.dumps(prof.to_dict(), indent=2))
    else:
        emit(profile_table(prof).render(args.format))
    return 0
