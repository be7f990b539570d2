"""Weight initialisation shared by the families trained from scratch with ReLU-like units.

A model built on the meta device has no values to initialise, and the first random init of a
meta tensor (`normal_`'s reference implementation) imports torch._dynamo, more than a second
of `convzoo summary`: every init function returns at once for such a model (`on_meta`).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def on_meta(model: nn.Module) -> bool:
    """Whether `model`'s parameters live on the meta device (shapes only: nothing to init)."""
    p = next(model.parameters(), None)
    return p is not None and p.is_meta


def linear_normal(std: float = 0.01) -> Callable[[nn.Linear], None]:
    def init(m: nn.Linear) -> None:
        nn.init.normal_(m.weight, 0, std)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    return init


def he_init(model: nn.Module, linear: Callable[[nn.Linear], None] | None = None) -> None:
    """He et al. 2015 (normal, fan-out) for convolutions with zero biases, batch norm at 1 and 0,
    and `linear` (if given) for the fully connected layers; the rest keep PyTorch's default."""
    if on_meta(model):
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear is not None:
            linear(m)
