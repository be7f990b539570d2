"""Activation functions by name, so any network can be rebuilt with another non-linearity."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import UserInputError


class ScaledTanh(nn.Module):
    """LeCun's squashing function f(a) = A tanh(S a) with A = 1.7159, S = 2/3 (LeNet-5, app. A)."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.amplitude, self.slope = amplitude, slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)


ActFactory = Callable[[], nn.Module]

ACTIVATIONS: dict[str, ActFactory] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "scaled_tanh": ScaledTanh,
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=True),
    "elu": lambda: nn.ELU(inplace=True),
    "selu": lambda: nn.SELU(inplace=True),
    "gelu": nn.GELU,
    "silu": lambda: nn.SiLU(inplace=True),
    "swish": lambda: nn.SiLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "hardswish": lambda: nn.Hardswish(inplace=True),
    "hardsigmoid": lambda: nn.Hardsigmoid(inplace=True),
    "identity": nn.Identity,
}

ActSpec = str | ActFactory | None


def act_factory(act: ActSpec) -> ActFactory:
    """Turn a name ('relu'), a module class or a zero-argument callable into a factory."""
    if act is None:
        return nn.Identity
    if isinstance(act, str):
        try:
            return ACTIVATIONS[act.lower()]
        except KeyError:
            names = ", ".join(sorted(ACTIVATIONS))
            raise UserInputError(f"unknown activation {act!r}; choose one of {names}") from None
    if callable(act):
        return act
    raise UserInputError(f"act must be a name or a callable, not {type(act).__name__}")


def make_act(act: ActSpec) -> nn.Module:
    return act_factory(act)()
