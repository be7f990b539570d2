"""Tables in a paper's or a lecture's own convention, from a real profile.

A family whose paper has a table of its own gets that view here (LeNet-5's section II.B,
GoogLeNet's Table 1, ResNet's Table 1, EfficientNet's Table 1); the model files hold only the
numbers those tables print, as data. Every other model gets the lecture's layer table.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ...models.efficientnet import EfficientNet
from ...models.googlenet import GoogLeNet
from ...models.lenet import LeNet5
from ...models.resnet import ResNet
from ...tables import Table
from ..profile import Profile
from .efficientnet import efficientnet_table
from .googlenet import googlenet_table
from .lecture import layer_table
from .lenet import lenet_table
from .resnet import resnet_table

RENDERERS: dict[type[nn.Module], Callable[..., Table]] = {
    LeNet5: lenet_table,
    GoogLeNet: googlenet_table,
    ResNet: resnet_table,
    EfficientNet: efficientnet_table,
}


def paper_table(model: nn.Module, profile: Profile) -> Table:
    """`profile` of `model` as its paper tabulates it, or as the lecture does."""
    for cls in type(model).__mro__:
        if cls in RENDERERS:
            return RENDERERS[cls](model, profile)
    table = layer_table(profile)
    paper = getattr(model, "paper", None)
    table.notes += list(getattr(paper, "notes", ()))
    return table


__all__ = ["RENDERERS", "layer_table", "paper_table"]
