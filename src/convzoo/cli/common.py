"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import os

from ..errors import UserInputError


def parse_size(text: str) -> tuple[int, int, int]:
    """'3x224x224' -> (3, 224, 224); '224x224' or '224' keep the model's channels (0)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise UserInputError(f"malformed size {text!r}: write CxHxW, e.g. 3x224x224") from None
    if len(nums) == 1:
        nums = [0, nums[0], nums[0]]
    elif len(nums) == 2:
        nums = [0, *nums]
    if len(nums) != 3 or min(nums[1:]) < 1 or nums[0] < 0:
        raise UserInputError(f"malformed size {text!r}: write CxHxW, e.g. 3x224x224")
    return nums[0], nums[1], nums[2]


def size_arg(text: str) -> tuple[int, int, int]:
    """`parse_size` for argparse, whose own message then names the problem."""
    try:
        return parse_size(text)
    except UserInputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def formatter(epilog: str) -> dict:
    """Subparser keywords that show an example under the help text."""
    return {"epilog": epilog, "formatter_class": argparse.RawDescriptionHelpFormatter}


def emit(text: str) -> None:
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 speaks for all
        return
    print(text, flush=True)
