"""A convolution's filters as a picture: each filter's weights scaled to 0..1 on its own.

A filter over 3 input channels is one RGB tile (the first layer of an ImageNet net shows its
edge and colour detectors this way); a filter over one channel (grey images, depthwise
convolutions) is one grey tile; a filter over C other than 1 or 3 channels is a row of C grey
tiles, one per input channel, so a deeper layer is drawn as filters x input channels.

The picture is meant to be read at its own size: each kernel is enlarged to about 48 pixels
(nearest neighbour, so a 3x3 kernel stays nine visible squares), each tile is labelled with
its filter's index (and, for deeper layers, each row with its filter and each column with its
input channel), and a title names the layer and the weight's shape, wrapped onto as many
lines as it needs rather than cut off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserInputError
from ..layers.lookup import find_layer, first_conv

TILE_PIXELS = 48  # a kernel is enlarged to about this many pixels across
FONT_PX = 13
GAP = 6  # between tiles
MARGIN = 10
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
FRAME = (150, 150, 150)


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


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font
    except TypeError:
        return ImageFont.load_default()


def _text_width(font, text: str) -> int:
    box = font.getbbox(text)
    return box[2] - box[0]


def _wrap(font, text: str, width: int) -> list[str]:
    """`text` in lines no wider than `width` pixels, broken at spaces (a long word alone)."""
    lines: list[str] = []
    for word in text.split():
        if lines and _text_width(font, f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def render_filters(tiles: torch.Tensor, cols: int | None, title: str, scale: int,
                   row_label: str = "filter", col_label: str = "input channel") -> Any:
    """A PIL image of N x C x kh x kw tiles in 0..1 (C 1 or 3): a square-ish grid of filters,
    each labelled with its index, or (when `cols` is given) one row per filter with a tile
    per input channel, rows and columns labelled."""
    import math

    from PIL import Image, ImageDraw

    font, small = _font(FONT_PX + 2), _font(FONT_PX)
    n, _, kh, kw = tiles.shape
    tw, th = kw * scale, kh * scale
    line_h = FONT_PX + 4
    by_rows = cols is not None
    if by_rows:
        ncols, nrows = cols, math.ceil(n / cols)
        left = _text_width(small, f"{row_label} {nrows - 1}") + GAP
        top_labels = line_h
        cell_w, cell_h = max(tw, _text_width(small, str(ncols - 1))), th
    else:
        ncols = max(1, min(n, math.ceil(math.sqrt(n))))
        nrows = math.ceil(n / ncols)
        left, top_labels = 0, 0
        cell_w, cell_h = max(tw, _text_width(small, f"#{n - 1}")), th + line_h
    grid_w = left + ncols * cell_w + (ncols - 1) * GAP
    width = max(grid_w, 320) + 2 * MARGIN
    lines = _wrap(font, title, width - 2 * MARGIN)
    if by_rows:
        lines += [f"rows: {row_label}s; columns: {col_label}s"]
    head = len(lines) * (FONT_PX + 6) + GAP
    height = MARGIN + head + top_labels + nrows * cell_h + (nrows - 1) * GAP + MARGIN
    img = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((MARGIN, MARGIN + i * (FONT_PX + 6)), line, fill=INK,
                  font=font if i < len(lines) - by_rows else small)
    big = tiles.clamp(0, 1).mul(255).round().to(torch.uint8)
    big = big.repeat_interleave(scale, 2).repeat_interleave(scale, 3).expand(n, 3, -1, -1)
    y0 = MARGIN + head + top_labels
    x0 = MARGIN + left
    if by_rows:
        for q in range(ncols):
            draw.text((x0 + q * (cell_w + GAP), y0 - line_h), str(q), fill=INK, font=small)
        for r in range(nrows):
            draw.text((MARGIN, y0 + r * (cell_h + GAP) + th // 2 - FONT_PX // 2),
                      f"{row_label} {r}", fill=INK, font=small)
    for i in range(n):
        r, q = divmod(i, ncols)
        x, y = x0 + q * (cell_w + GAP), y0 + r * (cell_h + GAP)
        tile = Image.fromarray(big[i].permute(1, 2, 0).contiguous().numpy(), "RGB")
        img.paste(tile, (x, y))
        draw.rectangle((x - 1, y - 1, x + tw, y + th), outline=FRAME)
        if not by_rows:
            draw.text((x, y + th + 2), f"#{i}", fill=INK, font=small)
    return img


def draw_filters(model: nn.Module, out: str | Path, layer: str | None = None,
                 scale: int | None = None, max_filters: int = 64) -> FilterPicture:
    """Write the filters of `layer` (default: the first convolution) as a labelled PNG."""
    name, conv = conv_layer(model, layer)
    weight = conv.weight
    kh, kw = weight.shape[2:]
    scale = scale or max(1, round(TILE_PIXELS / max(kh, kw)))
    tiles, cols = filter_tiles(weight, max_filters)
    shown = min(max_filters, weight.shape[0])
    shape = "x".join(map(str, weight.shape))
    title = (f"{getattr(model, 'model_name', '') or type(model).__name__} {name}: "
             f"{shown} of {weight.shape[0]} filters, weight {shape} "
             f"(each filter scaled to black..white on its own)")
    img = render_filters(tiles, cols, title, scale)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return FilterPicture(name, tuple(weight.shape), shown, img.size, path)


__all__ = ["FilterPicture", "conv_layer", "draw_filters", "filter_tiles", "render_filters"]
