"""`convzoo summary MODEL`: the layer table of a model, in convzoo's or the paper's units."""

from __future__ import annotations

import argparse
import json

import torch
from torch import nn

from ..analysis.paper import paper_table
from ..analysis.profile import Profile, profile_model
from ..analysis.receptive import profile_with_fields
from ..analysis.summary_table import profile_table, summary_json
from ..registry import create_model, get_entry
from ..sizes import Size, fill_channels
from ..tables import FORMATS
from .common import emit, formatter, positive, size_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
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


def _meta_model(name: str, **kw) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kw)


def meta_model_at(name: str, size: Size | None, **kw) -> tuple[nn.Module, Size]:
    """The model built on the meta device for `size` (default: its own input; open channels:
    its own channels; other channels: the model built for them) and the size filled in."""
    model = _meta_model(name, **kw)
    default = tuple(model.default_input_size)
    size = default if size is None else fill_channels(size, default[0])
    if size[0] != default[0]:
        model = _meta_model(name, in_channels=size[0], **kw)
    return model, size


def profile_at(name: str, size: Size | None, batch: int, **kw) -> tuple[nn.Module, Profile]:
    """The model on the meta device and its profile at `size` (see `meta_model_at`)."""
    model, size = meta_model_at(name, size, **kw)
    return model, profile_model(model, size, batch, name)


def cmd_summary(args: argparse.Namespace) -> int:
    get_entry(args.model)
    positive(args.num_classes, "--num-classes")
    kw = {} if args.num_classes is None else {"num_classes": args.num_classes}
    model, size = meta_model_at(args.model, args.input, **kw)
    prof, trace = profile_with_fields(model, size, args.batch)  # one pass for both
    prof.model = trace.model = args.model
    if args.convention == "paper":
        emit(paper_table(model, prof).render(args.format))
    elif args.format == "json":
        emit(json.dumps(summary_json(prof, trace), indent=2))
    else:
        emit(profile_table(prof, trace).render(args.format))
    return 0
