"""Highway layers (Srivastava, Greff, Schmidhuber 2015): y = H(x) * T(x) + x * (1 - T(x)).

T(x) = sigmoid(W_T x + b_T) is the transform gate and C = 1 - T the carry gate (the paper's
coupled form). With T = 0 the layer passes x through unchanged; with T = 1 it is the plain layer
H. The paper initialises b_T negative "(e.g. -1, -3 etc.)" so that a deep stack starts close to
the identity and gradients reach its first layers.
"""

from __future__ import annotations

import torch
from torch import nn

from .activations import ActSpec, make_act

DEFAULT_GATE_BIAS = -2.0


class Highway(nn.Module):
    """A highway layer around any shape-preserving pair of transforms `h` and `t`.

    `h` and `t` are linear maps (a Linear or a Conv2d); `act` follows `h` and a sigmoid follows
    `t`. `t`'s bias starts at `gate_bias`.
    """

    def __init__(
        self, h: nn.Module, t: nn.Module, act: ActSpec = "relu",
        gate_bias: float = DEFAULT_GATE_BIAS,
    ) -> None:
        super().__init__()
        self.h, self.act = h, make_act(act)
        self.t, self.gate = t, nn.Sigmoid()
        self.gate_bias = gate_bias
        nn.init.constant_(self.t.bias, gate_bias)

    def transform_gate(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.t(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.transform_gate(x)
        # The paper's formula as written (not x + T*(H - x)): T = 1 gives H(x) exactly.
        return self.act(self.h(x)) * t + x * (1.0 - t)

    def extra_repr(self) -> str:
        return f"gate_bias={self.gate_bias}"


class HighwayLinear(Highway):
    """A fully connected highway layer of `features` units (the paper's MNIST networks)."""

    def __init__(
        self, features: int, act: ActSpec = "relu", gate_bias: float = DEFAULT_GATE_BIAS,
    ) -> None:
        super().__init__(nn.Linear(features, features), nn.Linear(features, features), act,
                         gate_bias)


class HighwayConv2d(Highway):
    """A convolutional highway layer: H and T are k x k convolutions with 'same' padding."""

    def __init__(
        self, channels: int, kernel_size: int = 3, act: ActSpec = "relu",
        gate_bias: float = DEFAULT_GATE_BIAS,
    ) -> None:
        pad = kernel_size // 2
        super().__init__(nn.Conv2d(channels, channels, kernel_size, padding=pad),
                         nn.Conv2d(channels, channels, kernel_size, padding=pad), act, gate_bias)
