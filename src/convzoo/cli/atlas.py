"""`convzoo atlas`: a static, offline site of every model and lecture topic."""

from __future__ import annotations

import argparse

from .common import emit, formatter


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "atlas", help="a static site of the zoo: evolution chart, compare table, a page per "
                      "model and lecture (offline)",
        **formatter("examples:\n  convzoo atlas --out atlas/\n"
                    "  convzoo atlas --out atlas/ --models 'resnet*' vgg16"))
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--models", nargs="*", metavar="MODEL",
                   help="registered names or wildcards (default: all)")
    p.set_defaults(func=cmd_atlas)


def cmd_atlas(args: argparse.Namespace) -> int:
    from ..atlas import build_atlas
    from .compare import _names

    names = _names(args.models or [])
    index = build_atlas(args.out, names)
    emit(f"{index}: {len(names)} models; open it in a browser (no network needed)")
    return 0
