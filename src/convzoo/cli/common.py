"""What the subcommands share: output, help layout, the size flag, and the flags that set
`TrainConfig` fields one to one (train and finetune take them alike)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from typing import Any

from ..data.augment import augment_names
from ..errors import UserInputError
from ..sizes import Size, parse_size

# flag -> TrainConfig field, for the flags that override a recipe's fields one to one
FIELD_FLAGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--data", {"metavar": "NAME", "help": "data set: fashion-mnist, cifar10, mnist5k, "
                "imagefolder:PATH, fake:CxHxW:N:K, ..."}),
    ("--data-dir", {"metavar": "DIR", "help": "look for the data set's files here first"}),
    ("--epochs", {"type": int, "metavar": "N"}),
    ("--batch-size", {"type": int, "metavar": "N"}),
    ("--lr", {"type": float, "metavar": "X", "help": "learning rate (peak rate for one-cycle)"}),
    ("--momentum", {"type": float, "metavar": "X"}),
    ("--weight-decay", {"type": float, "metavar": "X"}),
    ("--optimizer", {"metavar": "NAME", "help": "sgd (default), adam, adamw, rmsprop"}),
    ("--schedule", {"metavar": "NAME",
                    "help": "constant, step, multistep, plateau, cosine, onecycle"}),
    ("--warmup-epochs", {"type": float, "metavar": "X"}),
    ("--label-smoothing", {"type": float, "metavar": "X"}),
    ("--grad-clip", {"type": float, "metavar": "X", "help": "max gradient norm"}),
    ("--ema", {"type": float, "metavar": "DECAY", "help": "parameter EMA, e.g. 0.999"}),
    ("--augment", {"metavar": "PRESET", "help": ", ".join(augment_names())}),
    ("--device", {"metavar": "cpu|cuda|auto"}),
    ("--amp", {"metavar": "auto|bf16|fp32"}),
    ("--out", {"metavar": "DIR", "help": "run directory (default runs/MODEL-DATA-TIME)"}),
    ("--seed", {"type": int, "metavar": "N"}),
    ("--workers", {"type": int, "metavar": "N", "help": "loader processes for image folders"}),
    ("--progressive-from", {"type": int, "metavar": "PX", "help": "progressive resizing: the "
                            "training input's side in the first epoch (with --progressive-to)"}),
    ("--progressive-to", {"type": int, "metavar": "PX",
                          "help": "... rising linearly to this side in the last epoch"}),
    ("--init-from", {"metavar": "CHECKPOINT", "help": "copy matching tensors from a trained "
                     "run (VGG: the paper's rule when the source is A)"}),
    ("--weights", {"metavar": "SOURCE", "help": "start from these weights (file or 'imagenet')"}),
    ("--max-steps", {"type": int, "metavar": "N", "help": "stop after N optimiser steps"}),
    ("--stop-after", {"type": int, "metavar": "N",
                      "help": "end this invocation after N epochs (continue with --resume)"}),
    ("--val-split", {"type": float, "metavar": "F",
                     "help": "hold out this fraction of the training set for validation"}),
    ("--save-every", {"type": int, "metavar": "N",
                      "help": "also save last/ every N optimiser steps (0: off, the default)"}),
    ("--save-minutes", {"type": float, "metavar": "M",
                        "help": "also save last/ every M minutes inside an epoch (default 10; "
                        "0: off)"}),
)

SOURCE_HELP = ("a run directory or checkpoint (its weights, class names and preprocessing), "
               "or a registered model name with --weights")


def field_name(flag: str) -> str:
    """'--batch-size' -> 'batch_size', the TrainConfig field it sets."""
    return flag.lstrip("-").replace("-", "_")


def add_field_flags(p: argparse.ArgumentParser, skip: Iterable[str] = ()) -> None:
    """FIELD_FLAGS on `p`; a flag not given stays out of the namespace (a recipe's value or
    the default then holds)."""
    skipped = set(skip)
    for flag, kw in FIELD_FLAGS:
        if flag not in skipped:
            p.add_argument(flag, default=argparse.SUPPRESS, **kw)


def field_values(args: argparse.Namespace, extra: Iterable[str] = ()) -> dict[str, Any]:
    """The TrainConfig fields the user set by flag (FIELD_FLAGS and `extra` field names)."""
    given = {field_name(flag) for flag, _ in FIELD_FLAGS} | set(extra)
    return {k: v for k, v in vars(args).items() if k in given}


def size_arg(text: str) -> Size:
    """`sizes.parse_size` for argparse, whose own message then names the problem."""
    try:
        return parse_size(text)
    except UserInputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def output_file(path: str, flag: str = "--out") -> str:
    """`path` if a file can be written there (its folder created if missing); else a one-line
    UserInputError, before any work is done."""
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise UserInputError(f"{flag} {path} is a directory; give a file name")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserInputError(f"{flag} {path}: cannot create {p.parent} ({e.strerror})") from None
    if not os.access(p.parent, os.W_OK):
        raise UserInputError(f"{flag} {path}: {p.parent} is not writable")
    return path


def positive(value: int | None, flag: str) -> None:
    if value is not None and value < 1:
        raise UserInputError(f"{flag} must be at least 1, got {value}")


def formatter(epilog: str) -> dict:
    """Subparser keywords that show an example under the help text."""
    return {"epilog": epilog, "formatter_class": argparse.RawDescriptionHelpFormatter}


def emit(text: str) -> None:
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 speaks for all
        return
    print(text, flush=True)


def plural(n: int, word: str) -> str:
    """'1 epoch', '4 epochs'."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def topk_text(test: dict[str, Any]) -> str:
    """', top-5 accuracy X' where top-k says something (k below the number of classes)."""
    k, classes = test.get("top5_k", 5), len(test.get("per_class") or {})
    if test.get("top5") is None or (classes and k >= classes):
        return ""
    return f", top-{k} accuracy {test['top5']:.4f}"


def trained_text(summary: dict[str, Any]) -> str:
    """'4 epochs in 51.1 s', or for a resumed run what this invocation trained."""
    total = int(summary.get("epochs") or 0)
    now = int(summary.get("epochs_trained", total))
    text = f"{plural(now, 'epoch')} in {summary.get('wall_s', 0.0):.1f} s"
    if now != total:
        text += f" (resumed after epoch {total - now}; {total} in all)"
    return text
