"""Reading image files, with every failure named by its path.

Every mode Pillow opens becomes 8-bit grey or RGB the way a viewer would show it:
- 16-bit grey (PNG's `I;16`, `I`) is scaled by 255/65535, not clipped at 255;
  32-bit float (`F`) is taken as 0..1 when it lies there, else clipped to 0..255;
- transparency (RGBA, LA, PA, a palette or grey image with a transparent colour) is
  composited over white, so transparent pixels do not turn into whatever colour they hold;
- CMYK, YCbCr and palette images are converted to RGB; bilevel images to grey;
- the EXIF orientation of photos is applied.
Files are refused, by path and with the reason, when they are empty, not images, truncated,
or when their header claims more pixels than Pillow's decompression-bomb limit
(`PIL.Image.MAX_IMAGE_PIXELS`, about 89 million): a PNG that says 100000x100000 would need
30 GB to decode.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConvzooError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm")
#: Modes that hold one grey value per pixel (with or without alpha).
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_WIDE_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
BACKGROUND = 255  # what transparent pixels are composited over (white)


def shown(path: str | Path) -> str:
    """A path as it can be printed: bytes that are not UTF-8 (a file named in Latin-1 on a
    UTF-8 system) appear as \\xNN escapes instead of breaking the terminal or the log."""
    s = str(path)
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class BadImageError(ConvzooError):
    """An image that cannot be read: missing, truncated, or not an image at all."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{shown(path)}: {reason}")
        self.path, self.reason = str(path), reason


def _open(path: Path) -> Any:
    """Image.open with the decompression-bomb warning turned into an error (the caller
    catches both); the header only is read."""
    from PIL import Image

    if not path.is_file():
        raise BadImageError(path, "no such file")
    if path.stat().st_size == 0:
        raise BadImageError(path, "empty file (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def _failure(path: Path, e: Exception) -> BadImageError:
    from PIL import Image, UnidentifiedImageError

    if isinstance(e, BadImageError):
        return e
    if isinstance(e, UnidentifiedImageError):
        return BadImageError(path, "not an image file")
    if isinstance(e, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return BadImageError(path, f"refused: its header claims more pixels than "
                             f"{Image.MAX_IMAGE_PIXELS:,} (a decompression bomb?): "
                             f"{str(e).split(',')[0]}")
    text = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
    return BadImageError(path, f"cannot decode ({text})")


def _palette_is_grey(im: Any) -> bool:
    try:
        pal = im.getpalette() or []
    except Exception:  # noqa: BLE001 - a damaged palette is simply not grey
        return False
    rgb = np.asarray(pal[: len(pal) // 3 * 3]).reshape(-1, 3)
    return bool(len(rgb)) and bool((rgb == rgb[:, :1]).all())


def stored_channels(im: Any) -> int:
    """1 for an image stored in grey (any bit depth, with or without alpha), else 3."""
    if im.mode in GREY_MODES:
        return 1
    if im.mode in ("P", "PA"):
        return 1 if _palette_is_grey(im) else 3
    return 3


def peek_image(path: str | Path) -> tuple[int, int, int]:
    """(channels as stored, height, width) from the header alone; BadImageError if the file
    is not an image one can decode."""
    path = Path(path)
    try:
        with _open(path) as im:
            w, h = im.size
            return stored_channels(im), h, w
    except Exception as e:  # noqa: BLE001 - image decoders fail in many ways
        raise _failure(path, e) from None


def _wide_to_grey(im: Any) -> np.ndarray:
    """16-bit and 32-bit grey scaled to 8 bits (not clipped)."""
    a = np.asarray(im)
    if im.mode == "F":
        a = a.astype(np.float64)
        a = a * 255 if np.nanmin(a, initial=0) >= 0 and np.nanmax(a, initial=0) <= 1 else a
        return np.nan_to_num(a).clip(0, 255).round().astype(np.uint8)
    a = a.astype(np.int64)
    if im.mode != "I" or im.format == "PNG" or a.max(initial=0) > 255:
        a = (a.clip(0, 65535) * 255 + 32767) // 65535  # 65535 -> 255, 257 -> 1
    return a.clip(0, 255).astype(np.uint8)


def _flatten(im: Any) -> tuple[np.ndarray, int]:
    """An 8-bit H x W (grey) or H x W x 3 (colour) array and its channel count."""
    from PIL import Image

    if im.mode in _WIDE_MODES:
        return _wide_to_grey(im), 1
    grey = stored_channels(im) == 1
    transparent = im.mode in ("RGBA", "LA", "La", "PA", "RGBa") or "transparency" in im.info
    if transparent:
        rgba = im.convert("RGBA")
        back = Image.new("RGBA", rgba.size, (BACKGROUND,) * 3 + (255,))
        im = Image.alpha_composite(back, rgba)
    im = im.convert("L" if grey else "RGB")
    return np.asarray(im), 1 if grey else 3


def read_image(path: str | Path, channels: int | None = 3) -> torch.Tensor:
    """Decode a file into a uint8 C x H x W tensor (3 channels, 1, or as stored if None)."""
    from PIL import ImageOps

    path = Path(path)
    try:
        with _open(path) as im:
            im.load()  # decodes fully, so a truncated file fails here and not later
            im = ImageOps.exif_transpose(im)
            a, c = _flatten(im)
    except Exception as e:  # noqa: BLE001 - image decoders fail in many ways
        raise _failure(path, e) from None
    if channels == 3 and c == 1:
        a = np.repeat(a[..., None], 3, axis=2)
        c = 3
    elif channels == 1 and c == 3:
        from PIL import Image

        a, c = np.asarray(Image.fromarray(a, "RGB").convert("L")), 1  # ITU-R 601 luma
    # a copy: the arrays Pillow hands out are read-only
    t = torch.from_numpy(np.array(a, np.uint8).reshape(a.shape[0], a.shape[1], c))
    return t.permute(2, 0, 1).contiguous()
