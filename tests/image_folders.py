"""A small image folder for tests that train on `imagefolder:` data."""

from __future__ import annotations

from pathlib import Path

import torch


def striped_folder(root: Path, side: int) -> str:
    """Three classes of 12 grey side x side PNGs of noise, class c with a white stripe in its
    c-th third of the rows (something to learn); returns the `imagefolder:` source."""
    from torchvision.io import write_png

    g = torch.Generator().manual_seed(1)
    stripe = side // 3
    for c in range(3):
        d = root / f"class{c}"
        d.mkdir(parents=True)
        for i in range(12):
            img = (torch.rand(1, side, side, generator=g) * 255).to(torch.uint8)
            img[:, c * stripe:(c + 1) * stripe] = 255
            write_png(img, str(d / f"{i}.png"))
    return f"imagefolder:{root}"
