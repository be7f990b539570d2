"""The activation functions of the "why ReLU" slides and their derivatives, as one PNG.

The curves are torch's own functions with their published constants, and the derivatives come
from autograd, so the picture shows what a network built by convzoo computes:

- sigmoid 1 / (1 + e^-x), derivative s(1 - s);
- tanh, derivative 1 - tanh^2 = (1 - t)(1 + t);
- ReLU max(0, x), derivative 0 or 1 (autograd takes 0 at x = 0);
- leaky ReLU: x for x > 0, a x otherwise, a = 0.01 (Maas, Hannun, Ng 2013; torch's default);
- ELU: x for x > 0, alpha (e^x - 1) otherwise, alpha = 1 (Clevert, Unterthiner, Hochreiter 2015);
- SELU: lambda x for x > 0, lambda alpha (e^x - 1) otherwise, lambda = 1.0507, alpha = 1.6733
  (Klambauer et al. 2017).

`SLIDE_FORMULAS` holds the two lines of the lecture slides that differ from these (a leaky
slope of 2, and an SELU branch 2e^-x - 1), to be drawn beside the published ones for contrast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import UserInputError

LEAKY_SLOPE = 0.01  # Maas et al. 2013; torch.nn.LeakyReLU's default
SELU_LAMBDA = 1.0507009873554804934193349852946  # Klambauer et al. 2017, eq. (14)
SELU_ALPHA = 1.6732632423543772848170429916717


@dataclass(frozen=True)
class Activation:
    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    formula: str  # the published definition, in plain text


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    Activation("sigmoid", torch.sigmoid, "1 / (1 + e^-x)"),
    Activation("tanh", torch.tanh, "(e^x - e^-x) / (e^x + e^-x)"),
    Activation("relu", F.relu, "max(0, x)"),
    Activation("leaky_relu", lambda x: F.leaky_relu(x, LEAKY_SLOPE),
               f"x if x > 0, {LEAKY_SLOPE:g}x otherwise"),
    Activation("elu", lambda x: F.elu(x, 1.0), "x if x > 0, e^x - 1 otherwise"),
    Activation("selu", F.selu,
               f"{SELU_LAMBDA:.4f}x if x > 0, {SELU_LAMBDA:.4f}*{SELU_ALPHA:.4f}(e^x - 1) "
               "otherwise"),
)}

# What the slides print, where it is not the published function.
SLIDE_FORMULAS: dict[str, tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = {
    "leaky_relu": ("as a lecture slide prints it: 2x if x <= 0",
                    lambda x: torch.where(x > 0, x, 2 * x)),
    "selu": ("as a lecture slide prints it: 2e^-x - 1 if x <= 0",
              lambda x: torch.where(x > 0, x, 2 * torch.exp(-x) - 1)),
}


def curve(name: str, lo: float = -4.0, hi: float = 4.0, n: int = 801
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, f(x), f'(x)) on n points of [lo, hi]; the derivative by autograd."""
    if name not in ACTIVATIONS:
        raise UserInputError(f"unknown activation {name!r}: choose from {', '.join(ACTIVATIONS)}")
    if not lo < hi or n < 2:
        raise UserInputError(f"need lo < hi and at least 2 points, got [{lo}, {hi}] and {n}")
    x = torch.linspace(lo, hi, n, dtype=torch.float64, requires_grad=True)
    y = ACTIVATIONS[name].fn(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    return x.detach(), y.detach(), dy


def draw_activation_functions(
    path: str | Path, names: list[str] | None = None, lo: float = -4.0, hi: float = 4.0,
    slide_formulas: bool = True,
) -> tuple[int, int]:
    """One panel per activation with its derivative; with `slide_formulas`, the slides' two
    differing lines dotted beside the published ones. Returns the PNG's (width, height)."""
    try:
        import matplotlib
    except ImportError:
        raise UserInputError("this picture needs matplotlib: pip install 'convzoo[plots]'") \
            from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = names or list(ACTIVATIONS)
    cols = 3 if len(names) > 2 else len(names)
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.8 * rows), dpi=100,
                             squeeze=False)
    for ax, name in zip(axes.flat, names):
        x, y, dy = curve(name, lo, hi)
        ax.axhline(0, color="black", lw=0.6)
        ax.axvline(0, color="black", lw=0.6)
        ax.plot(x, y, color="#1f77b4", lw=2, label="f(x)")
        ax.plot(x, dy, color="#d62728", lw=1.6, ls="--", label="f'(x)")
        low, high = float(min(y.min(), dy.min())), float(max(y.max(), dy.max()))
        if slide_formulas and name in SLIDE_FORMULAS:
            label, fn = SLIDE_FORMULAS[name]
            ys = fn(x)
            ax.plot(x, ys, color="dimgrey", lw=1.6, ls=":", label=label)
            low, high = min(low, float(ys.min())), max(high, float(ys.max()))
        ax.set_title(f"{name}: {ACTIVATIONS[name].formula}", fontsize=9)
        ax.set_xlim(lo, hi)
        # the slides' lines run off to -8 and +108: show the part near the published curve
        ax.set_ylim(max(low, -3.0) - 0.3, min(high, 4.5) + 0.3)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("Activation functions (solid) and their derivatives (dashed); dotted: a "
                 "formula as printed on a lecture slide, which differs from the published one")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    w, h = fig.canvas.get_width_height()
    plt.close(fig)
    return w, h
