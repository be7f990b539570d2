"""The model a picture is drawn from, and the layer it is drawn at."""

from __future__ import annotations

import difflib

from torch import nn

from ..errors import UserInputError


def load_model(source: str, weights: str | None) -> tuple[nn.Module, str]:
    """(model in eval mode, a description) from a run directory or checkpoint, a model name
    with weights, or a bare model name (random weights: the picture of an untrained net)."""
    from ..cli.predict import load_for_predict
    from ..registry import create_model, get_entry
    from ..train.inference import is_run

    if is_run(source):
        return load_for_predict(source, weights), f"the run {source}"
    if weights is not None:
        return load_for_predict(source, weights), f"{source} with weights {weights}"
    get_entry(source)  # an unknown name fails here, with suggestions
    return create_model(source).eval(), f"{source} with random weights (no --weights given)"


def find_module(model: nn.Module, name: str) -> nn.Module:
    """A group (stem, stage2, head, ...) or any module by its full name."""
    groups = model.group_modules() if hasattr(model, "group_modules") else {}
    if name in groups:
        return groups[name]
    modules = dict(model.named_modules())
    if name in modules and name:
        return modules[name]
    close = difflib.get_close_matches(name, [*groups, *modules], n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UserInputError(f"no layer {name!r} in this model; {hint}see the names with "
                         "`convzoo summary MODEL`")


def first_conv(module: nn.Module) -> tuple[str, nn.Conv2d] | None:
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    return None
