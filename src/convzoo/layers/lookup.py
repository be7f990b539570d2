"""Finding a layer of a built model by the name a user types.

A name is a parameter group the model declares (stem, stage2, head, ...) or any module's full
name as `convzoo summary MODEL` prints it (stages.0.c3, head.fc). Pictures, feature
extraction and anything else that hooks one layer look it up here, so every command accepts
the same names and a typo gets the same suggestions.
"""

from __future__ import annotations

import difflib

from torch import nn

from ..errors import UserInputError


def group_modules(model: nn.Module) -> dict[str, nn.Module]:
    """The model's named groups (stem, stage1, ..., head); none for a plain nn.Module."""
    groups = getattr(model, "group_modules", None)
    return dict(groups()) if callable(groups) else {}


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The group or module called `name`; an unknown name is bad input naming the closest."""
    groups = group_modules(model)
    if name in groups:
        return groups[name]
    modules = dict(model.named_modules())
    if name and name in modules:  # "" is the whole model, which is not a layer
        return modules[name]
    close = difflib.get_close_matches(name, [*groups, *(m for m in modules if m)], n=3,
                                      cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    named = f"groups: {', '.join(groups)}; " if groups else ""
    raise UserInputError(f"no layer {name!r} in this model; {hint}{named}see every module's "
                         "name with `convzoo summary MODEL`")


def first_conv(module: nn.Module) -> tuple[str, nn.Conv2d] | None:
    """(name, module) of the first Conv2d in `module`'s registration order, or None."""
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    return None
