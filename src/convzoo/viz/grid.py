"""Tiles in a grid, drawn with Pillow: every tile the same size, a dark gap between tiles."""

from __future__ import annotations

import math
from pathlib import Path

import torch

GAP = 1  # pixels between tiles and around the grid
BACKGROUND = 40  # grey level of the gaps: dark, so a white tile edge still shows


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """(rows, cols) for n tiles: nearly square unless `cols` is given."""
    cols = max(1, min(n, cols or math.ceil(math.sqrt(n))))
    return math.ceil(n / cols), cols


def grid_size(n: int, tile: tuple[int, int], scale: int, cols: int | None = None,
              gap: int = GAP) -> tuple[int, int]:
    """(width, height) in pixels of the grid `save_grid` draws."""
    rows, cols = grid_shape(n, cols)
    th, tw = tile
    return cols * tw * scale + (cols + 1) * gap, rows * th * scale + (rows + 1) * gap


LINE = 14  # pixels of a line of Pillow's default font, with a little air


def save_grid(tiles: torch.Tensor, path: str | Path, scale: int = 1, cols: int | None = None,
              gap: int = GAP, title: list[str] | None = None,
              labels: list[str] | None = None) -> tuple[int, int]:
    """Write N x C x H x W tiles in 0..1 (C = 1 grey, C = 3 RGB) as a PNG; each tile is
    enlarged `scale` times with square pixels (nearest neighbour, so a 3x3 kernel stays nine
    visible weights). `title`: lines above the grid; `labels`: one per tile, under it.
    Returns the image's (width, height)."""
    from PIL import Image, ImageDraw, ImageFont

    n, c, h, w = tiles.shape
    rows, cols = grid_shape(n, cols)
    width, height = grid_size(n, (h, w), scale, cols, gap)
    font = ImageFont.load_default()
    if title:  # the title is not cut off: the picture widens to it, the grid at its left
        width = max(width, 8 + max(math.ceil(font.getlength(t)) for t in title))
    head = LINE * len(title or []) + (4 if title else 0)
    under = LINE if labels else 0
    height += head + rows * under
    canvas = torch.full((3, height, width), BACKGROUND, dtype=torch.uint8)
    big = tiles.clamp(0, 1).mul(255).round().to(torch.uint8)
    big = big.repeat_interleave(scale, 2).repeat_interleave(scale, 3).expand(n, 3, -1, -1)
    spots = []
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = head + gap + r * (h * scale + gap + under), gap + q * (w * scale + gap)
        canvas[:, top:top + h * scale, left:left + w * scale] = big[i]
        spots.append((left + 2, top + h * scale + 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(canvas.permute(1, 2, 0).contiguous().numpy(), "RGB")
    if title or labels:
        draw = ImageDraw.Draw(picture)
        for k, line in enumerate(title or []):
            draw.text((4, 2 + k * LINE), line, fill=(235, 235, 235), font=font)
        for spot, text in zip(spots, labels or []):
            draw.text(spot, text, fill=(200, 200, 200), font=font)
    picture.save(path)
    return width, height
