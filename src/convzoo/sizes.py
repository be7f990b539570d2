"""The one reader of image sizes: 'CxHxW', 'HxW' and 'N'.

One rule everywhere (CLI flags, recipes and `--set`, the data catalog, the experiments):
'HxW' and 'N' give the height and width only, and leave the channels open (0) for whoever
knows them (the data, the model); `fill_channels` closes them.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import UserInputError

Size = tuple[int, int, int]

# Far above any image a network here takes (a 1e12-pixel side would overflow the counts).
MAX_SIDE = 1 << 16
MAX_CHANNELS = 1 << 16


def parse_size(value: str | int | Sequence[int]) -> Size:
    """'3x224x224' -> (3, 224, 224); '224x224' or '224' -> (0, 224, 224), channels open.

    A sequence of two or three integers (a recipe's list) is read the same way."""
    text = value if isinstance(value, str) else str(value)
    if isinstance(value, str):
        parts = value.strip().lower().replace("*", "x").split("x")
    elif isinstance(value, int):
        parts = [str(value)]
    else:
        parts = [str(v) for v in value]
    try:
        nums = [int(p) for p in parts]
    except (TypeError, ValueError):
        raise UserInputError(f"malformed size {text!r}: write CxHxW, HxW or N, "
                             "e.g. 3x224x224") from None
    if len(nums) == 3 and nums[0] == 0 and isinstance(value, str):
        # written out, a channel count is a count: 0x32x32 is no image (HxW leaves it open)
        raise UserInputError(f"malformed size {text!r}: an image has at least 1 channel "
                             "(write HxW to leave the channels to the data)")
    if len(nums) == 1:
        nums = [0, nums[0], nums[0]]
    elif len(nums) == 2:
        nums = [0, *nums]
    if len(nums) != 3 or min(nums[1:]) < 1 or nums[0] < 0:
        raise UserInputError(f"malformed size {text!r}: write CxHxW, HxW or N with positive "
                             "numbers, e.g. 3x224x224")
    if max(nums[1:]) > MAX_SIDE or nums[0] > MAX_CHANNELS:
        raise UserInputError(f"size {text!r} is too large: sides up to {MAX_SIDE} and "
                             f"channels up to {MAX_CHANNELS}")
    return nums[0], nums[1], nums[2]


def fill_channels(size: Sequence[int], channels: int) -> Size:
    """`size` with its open channel count (0) set to `channels`."""
    c, h, w = (int(v) for v in size)
    return (c or int(channels), h, w)
