"""`convzoo pack imagefolder:PATH --out FILE`: an image folder packed into one memory-mapped
file of pre-resized images, read as `--data packed:FILE` wherever `imagefolder:` works."""

from __future__ import annotations

import argparse

from ..errors import UserInputError
from .common import formatter


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pack", help="pack an image folder into one fast file (packed:FILE)",
        **formatter("examples:\n"
                    "  convzoo pack imagefolder:photos --out photos.pack\n"
                    "  convzoo pack imagefolder:photos --out photos-raw.pack --raw "
                    "--max-side 160\n"
                    "then: convzoo train resnet18 --data packed:photos.pack"))
    p.add_argument("source", metavar="imagefolder:PATH")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--max-side", type=int, default=256, metavar="N",
                   help="longer side of every stored image at most N pixels (default 256)")
    codec = p.add_mutually_exclusive_group()
    codec.add_argument("--quality", type=int, default=90, metavar="Q",
                       help="JPEG quality 1..100 (default 90)")
    codec.add_argument("--raw", action="store_true",
                       help="store raw pixels: no decoding when reading, about 10x the bytes")
    p.add_argument("--seed", type=int, default=0,
                   help="chooses the held-out test images of a folder without val/")
    p.set_defaults(func=cmd_pack)


def cmd_pack(args: argparse.Namespace) -> int:
    from ..data.images import shown
    from ..data.pack import write_pack

    kind, _, path = args.source.partition(":")
    if kind != "imagefolder" or not path:
        raise UserInputError(f"convzoo pack takes imagefolder:PATH, not {args.source!r}")
    try:
        r = write_pack(path, args.out, max_side=args.max_side,
                       quality=None if args.raw else args.quality, seed=args.seed)
    except KeyboardInterrupt:
        print("stopped; run the same command again to go on from where it stopped")
        return 130
    if r.resumed_from:
        print(f"went on from image {r.resumed_from:,}")
    for path_, reason in r.skipped:
        print(f"skipped {shown(path_)}: {reason}")
    print(f"wrote {shown(r.path)}: {r.images:,} images, {r.bytes / 1e6:.1f} MB, "
          f"{r.seconds:.1f} s" + (f"; {len(r.skipped)} unreadable image"
                                  f"{'s' if len(r.skipped) != 1 else ''} skipped (listed above)"
                                  if r.skipped else ""))
    print(f"use it as --data packed:{args.out}")
    return 0
