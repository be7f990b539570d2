"""Activation maps: what one image becomes at a named layer, the first K channels as grey
tiles, each scaled to 0..1 on its own (so a weak channel still shows its pattern; compare
channels' strengths with the printed statistics, not the picture)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import UserInputError
from ..layers.lookup import find_layer, first_conv, group_modules
from .grid import save_grid

MIN_TILE = 64  # small maps (7x7 at the end of a net) are enlarged to at least this size


@dataclass
class ActivationPicture:
    layer: str
    shape: tuple[int, ...]  # the layer's output for this image: C x H x W
    shown: int
    size: tuple[int, int]
    mean: float  # over the whole output
    zero_fraction: float  # outputs exactly 0 (a ReLU's silent units)
    path: Path


def default_layer(model: nn.Module) -> str:
    """The stem's output where the model names one, else the first convolution."""
    if "stem" in group_modules(model):
        return "stem"
    found = first_conv(model)
    if found is None:
        raise UserInputError("this model has no convolution; name a layer with --layer")
    return found[0]


def image_input(model: nn.Module, image: str | Path,
                preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """The image as the model sees it: `preprocess` (a source's: a run's, or the one its
    weights declare), else an ImageNet-style centre crop at the model's default input size."""
    from ..data.images import BadImageError, read_image
    from ..runs.source import default_preprocess

    prep = preprocess or default_preprocess(model)
    try:
        img = read_image(image, channels=prep.channels)  # type: ignore[attr-defined]
    except BadImageError as e:
        raise UserInputError(f"cannot read the image {e}") from None
    return prep(img)[None]


@torch.no_grad()
def layer_output(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    target = find_layer(model, layer)
    captured: list[torch.Tensor] = []

    def hook(_m: nn.Module, _i: tuple, out: object) -> None:
        captured.append(out if isinstance(out, torch.Tensor) else out[0])  # type: ignore[index]

    handle = target.register_forward_hook(hook)
    try:
        model.eval()
        model(x)
    finally:
        handle.remove()
    if not captured:
        raise UserInputError(f"layer {layer!r} is not used when this model runs; choose another")
    return captured[0][0].float()


def draw_activations(model: nn.Module, image: str | Path, out: str | Path,
                     layer: str | None = None, channels: int = 32, scale: int | None = None,
                     preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     ) -> ActivationPicture:
    layer = layer or default_layer(model)
    maps = layer_output(model, image_input(model, image, preprocess), layer)
    if maps.dim() != 3:
        raise UserInputError(f"layer {layer!r} gives a vector of {maps.numel()} values, not "
                             "maps; choose a convolutional layer (e.g. stem, stage2)")
    k = min(channels, maps.shape[0])
    shown = maps[:k]
    lo = shown.flatten(1).min(1).values.view(-1, 1, 1)
    hi = shown.flatten(1).max(1).values.view(-1, 1, 1)
    tiles = torch.where(hi - lo > 1e-12, (shown - lo) / (hi - lo).clamp_min(1e-12),
                        torch.zeros_like(shown))  # a silent channel is black
    h = maps.shape[1]
    scale = scale or max(1, -(-MIN_TILE // h))
    name = getattr(model, "model_name", type(model).__name__)
    title = [f"{name}, {layer}: channels 0-{k - 1} of {maps.shape[0]} "
             f"({maps.shape[1]}x{maps.shape[2]}) for {Path(image).name}",
             "each map scaled to its own range: black its lowest value, white its highest"]
    size = save_grid(tiles[:, None], out, scale=scale, title=title,
                     labels=[f"{c}" for c in range(k)])
    return ActivationPicture(layer, tuple(maps.shape), k, size, float(maps.mean()),
                             float((maps == 0).float().mean()), Path(out))
