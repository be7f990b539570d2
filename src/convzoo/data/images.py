"""Reading image files, with every failure named by its path."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConvzooError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm")


class BadImageError(ConvzooError):
    """An image that cannot be read: missing, truncated, or not an image at all."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def read_image(path: str | Path, channels: int | None = 3) -> torch.Tensor:
    """Decode a file into a uint8 C x H x W tensor (3 channels, 1, or as stored if None)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise BadImageError(path, "no such file")
    try:
        with Image.open(path) as im:
            im.load()  # decodes fully, so a truncated file fails here and not later
            if channels == 3:
                im = im.convert("RGB")
            elif channels == 1:
                im = im.convert("L")
            elif im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
            data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
            c = 1 if im.mode == "L" else 3
            return data.view(im.height, im.width, c).permute(2, 0, 1).contiguous()
    except UnidentifiedImageError:
        raise BadImageError(path, "not an image file") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImageError(path, f"cannot decode ({e})") from None
