"""A convolution's filters as a picture: each filter's weights scaled to 0..1 on its own.

A filter over 3 input channels is one RGB tile (the first layer of an ImageNet net shows its
edge and colour detectors this way); a filter over one channel (grey images, depthwise
convolutions) is one grey tile; a filter over C other than 1 or 3 channels is a row of C grey
tiles, one per input channel, so a deeper layer is drawn as filters x input channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import UserInputError
from ..layers.lookup import find_layer, first_conv
from .grid import save_grid

TILE_PIXELS = 32  # a kernel is enlarged to about this many pixels across


@dataclass
class FilterPicture:
    layer: str
    weight_shape: tuple[int, ...]
    shown: int  # filters drawn
    size: tuple[int, int]  # the PNG's width, height
    path: Path


def conv_layer(model: nn.Module, layer: str | None) -> tuple[str, nn.Conv2d]:
    """The named convolution (a group or container means its first one); default: the first."""
    if layer is None:
        found = first_conv(model)
        if found is None:
            raise UserInputError("this model has no convolution to draw")
        return found
    module = find_layer(model, layer)
    if isinstance(module, nn.Conv2d):
        return layer, module
    if list(module.children()):
        found = first_conv(module)
        if found is not None:
            return f"{layer}.{found[0]}" if found[0] else layer, found[1]
    raise UserInputError(f"layer {layer!r} is a {type(module).__name__}, not a convolution; "
                         "filters are drawn for Conv2d layers")


def filter_tiles(weight: torch.Tensor, max_filters: int = 64,
                 max_inputs: int = 16) -> tuple[torch.Tensor, int | None]:
    """(N x C x kh x kw tiles in 0..1, columns of the grid or None for a square one)."""
    w = weight.detach().float().cpu()[:max_filters]
    lo = w.flatten(1).min(1).values.view(-1, 1, 1, 1)
    hi = w.flatten(1).max(1).values.view(-1, 1, 1, 1)
    w = torch.where(hi - lo > 1e-12, (w - lo) / (hi - lo).clamp_min(1e-12),
                    torch.full_like(w, 0.5))
    cin = w.shape[1]
    if cin in (1, 3):
        return w, None
    k = min(cin, max_inputs)
    return w[:, :k].reshape(-1, 1, *w.shape[2:]), k


def draw_filters(model: nn.Module, out: str | Path, layer: str | None = None,
                 scale: int | None = None, max_filters: int = 64) -> FilterPicture:
    name, conv = conv_layer(model, layer)
    weight = conv.weight
    kh, kw = weight.shape[2:]
    scale = scale or max(1, round(TILE_PIXELS / max(kh, kw)))
    tiles, cols = filter_tiles(weight, max_filters)
    size = save_grid(tiles, out, scale=scale, cols=cols)
    return FilterPicture(name, tuple(weight.shape), min(max_filters, weight.shape[0]), size,
                         Path(out))


__all__ = ["FilterPicture", "conv_layer", "draw_filters", "filter_tiles"]
