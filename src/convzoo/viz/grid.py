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


def save_grid(tiles: torch.Tensor, path: str | Path, scale: int = 1, cols: int | None = None,
              gap: int = GAP) -> tuple[int, int]:
    """Write N x C x H x W tiles in 0..1 (C = 1 grey, C = 3 RGB) as a PNG; each tile is
    enlarged `scale` times with square pixels (nearest neighbour, so a 3x3 kernel stays nine
    visible weights). Returns the image's (width, height)."""
    from PIL import Image

    n, c, h, w = tiles.shape
    rows, cols = grid_shape(n, cols)
    width, height = grid_size(n, (h, w), scale, cols, gap)
    canvas = torch.full((3, height, width), BACKGROUND, dtype=torch.uint8)
    big = tiles.clamp(0, 1).mul(255).round().to(torch.uint8)
    big = big.repeat_interleave(scale, 2).repeat_interleave(scale, 3).expand(n, 3, -1, -1)
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = gap + r * (h * scale + gap), gap + q * (w * scale + gap)
        canvas[:, top:top + h * scale, left:left + w * scale] = big[i]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas.permute(1, 2, 0).contiguous().numpy(), "RGB").save(path)
    return width, height
