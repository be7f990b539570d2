"""Weights in and out: foreign state_dicts mapped to convzoo's names, checked shape by shape.

Nothing here unpickles arbitrary objects: `.safetensors` files are read with safetensors, and
`.pth`/`.pt` files only with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from torch import nn

from ..errors import UserInputError
from .state import (  # noqa: F401  (the package's public names)
    HEAD_PREFIX,
    LoadReport,
    imagenet_class_names,
    load_state,
    read_state_dict,
    rename,
    to_convzoo,
)

log = logging.getLogger("convzoo.weights")


def load_weights(
    model: nn.Module, weights: str,
    sources: Mapping[str, Callable[[nn.Module], LoadReport]] | None = None,
) -> LoadReport:
    """Load `weights` (a file, or one of the named `sources` the registry lists) into `model`.

    The one place a model gets the class names and preprocessing its weights come with.
    """
    sources = sources or {}
    if weights in sources:
        report = sources[weights](model)
    elif weights.startswith("torchvision:"):
        from .torchvision_hub import load_torchvision_weights

        report = load_torchvision_weights(model, weights.split(":", 1)[1])
    elif not Path(weights).exists() and not any(c in weights for c in "/\\."):
        name = getattr(model, "model_name", type(model).__name__)
        have = ", ".join(repr(s) for s in sources) or "none"
        raise UserInputError(f"{name} has no weights named {weights!r} (named sources: {have}); "
                             "pass a weights file (.pth or .safetensors) instead")
    else:
        report = load_state(model, read_state_dict(weights), weights)
    log.info("%s", report)
    model.weights_report = report
    if report.class_names is not None:
        model.class_names = report.class_names
    if report.preprocess is not None:
        model.preprocess = report.preprocess
    return report
