"""`convzoo data bench SOURCE`: the loader doctor. Per-stage rates on one core, the whole
loader at 0 and N workers, optionally the model's training rate, and what limits training."""

from __future__ import annotations

import argparse
import json

from .common import formatter


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data", help="data tools: `data bench SOURCE` finds what limits the loader",
        **formatter("examples:\n"
                    "  convzoo data bench imagefolder:photos --workers 4\n"
                    "  convzoo data bench packed:photos.pack --model resnet18 --device auto"))
    tools = p.add_subparsers(dest="tool", metavar="TOOL", required=True)
    b = tools.add_parser("bench", help="time each loader stage and the whole loader")
    b.add_argument("source", metavar="SOURCE", help="imagefolder:PATH or packed:FILE")
    b.add_argument("--workers", type=int, metavar="N",
                   help="loader processes to compare with none (default: cores - 1)")
    b.add_argument("--model", metavar="NAME", help="also time this model's training steps")
    b.add_argument("--device", default="auto", metavar="cpu|cuda|auto")
    b.add_argument("--images", type=int, default=64, metavar="N", help="images sampled")
    b.add_argument("--batch-size", type=int, default=32, metavar="N")
    b.add_argument("--seconds", type=float, default=0.3, metavar="S",
                   help="time each measurement at least S seconds (default 0.3)")
    b.add_argument("--data-dir", metavar="DIR")
    b.add_argument("--format", choices=("text", "json"), default="text")
    b.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from ..data.doctor import describe, diagnose
    from ..errors import UserInputError
    from ..runtime.device import resolve_device

    if args.workers is not None and args.workers < 0:
        raise UserInputError(f"--workers must be 0 or more, got {args.workers}")
    if args.images < 1 or args.batch_size < 1:
        raise UserInputError("--images and --batch-size must be at least 1")
    device = resolve_device(args.device)
    rep = diagnose(args.source, workers=args.workers, model=args.model, device=str(device),
                   images=args.images, batch_size=min(args.batch_size, args.images),
                   data_dir=args.data_dir, min_s=max(args.seconds, 0.0))
    print(json.dumps(rep.to_dict(), indent=2) if args.format == "json" else describe(rep))
    return 0
