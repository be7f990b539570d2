"""Decoding a photo straight to the model's input size, in uint8 throughout.

Chosen by measurement on a 2-core x86 CPU, one thread (docs/photos.md): for a JPEG, libjpeg-turbo
through ``torchvision.io.decode_jpeg`` decoded 300-500 px photos faster than Pillow's
``Image.open(...).load()`` and gives the same pixels; the crop is then a slice and the resize
torch's uint8 antialiased bilinear kernel (no float copy of the photo). When the crop is at
least DRAFT_MIN_REDUCTION times the input size on both sides, Pillow decodes at a reduced DCT
scale (``Image.draft``: 1/2, 1/4 or 1/8 of the side, so 4-64x fewer pixels to decode) and
crops and resizes in one call (``Image.resize(size, box=...)``); this changes pixels a little
(the reduced decode is a box-filtered image, not the full one), which the log says once per
process.

Anything else (PNG, CMYK or EXIF-rotated JPEGs, damaged files) goes through
:func:`.images.read_image`, which handles every mode and names the failure by path.

torchvision 0.29 deprecated its image decoders in favour of TorchCodec and warns on every call,
so :func:`torchvision_jpeg` silences exactly that warning around its one call (no user should
see a warning about a choice convzoo made), and where ``torchvision.io`` cannot decode (or is
gone, in a later release) Pillow decodes the same JPEG to the same pixels, a little slower.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger("convzoo.data")

JPEG_MAGIC = b"\xff\xd8"
#: Reduced-DCT decoding is used only when the box can shrink by at least this on both sides:
#: below it the draft keeps the full scale and torchvision's decoder is the faster one.
DRAFT_MIN_REDUCTION = 2.0
_ORIENTATION = 0x0112  # the EXIF tag

#: A box (top, left, height, width) in the full image's pixels, or None for evaluation's
#: resize-and-centre-crop.
Box = tuple[int, int, int, int] | None
_said_draft = False
#: The start of torchvision's deprecation warning for its image decoders (0.29 and later).
TORCHVISION_IO_DEPRECATED = "The image decoding and encoding capabilities of TorchVision"


def torchvision_jpeg(data: bytes | memoryview | np.ndarray, channels: int) -> torch.Tensor | None:
    """A JPEG decoded by libjpeg-turbo through ``torchvision.io.decode_jpeg`` (C x H x W uint8),
    without its deprecation warning; None where torchvision cannot (no ``torchvision.io``, or
    a file it refuses): the caller then decodes with Pillow."""
    try:
        from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError:
        return None
    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=TORCHVISION_IO_DEPRECATED,
                                category=DeprecationWarning)
        try:
            return decode_jpeg(raw, mode=ImageReadMode.RGB if channels == 3
                               else ImageReadMode.GRAY)
        except (RuntimeError, ValueError, TypeError):
            return None


def pillow_pixels(im, channels: int) -> torch.Tensor:
    """An open PIL image decoded at `channels` (RGB or L) as C x H x W uint8."""
    im = im.convert("RGB" if channels == 3 else "L")
    t = torch.from_numpy(np.asarray(im).copy())
    return t[None] if t.dim() == 2 else t.permute(2, 0, 1)


def resize_uint8(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a uint8 C x H x W image, antialiased when shrinking; stays uint8
    (torch has a vectorised uint8 kernel for this: no float copy of the photo)."""
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    shrink = size[0] < img.shape[-2] or size[1] < img.shape[-1]
    # torch's vectorised uint8 kernel is for pixels stored channel-last (H x W x C): on planes
    # it was measured slower here than the copy plus the kernel. The batch dimension is added
    # to the H x W x C memory (img[None] of a C x H x W view would carry a batch stride of C,
    # which torch does not take for channel-last: its planar kernel then ran, 1.5x slower on
    # a raw pack's crops, benchmarks/raw_resize_ab.py). The result stays channel-last, and so
    # does the batch where the run computes channel-last (folder_batches.stack_images).
    x = img.permute(1, 2, 0).contiguous()[None].permute(0, 3, 1, 2)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                         antialias=shrink)[0]


def eval_geometry(h: int, w: int, size: tuple[int, int],
                  shorter: float) -> tuple[int, int, int, int, int, int]:
    """Evaluation's resize-then-centre-crop as numbers: the resized (nh, nw) and the crop's
    (top, left, th, tw) in the resized image."""
    th, tw = size
    scale = max(th, tw) / shorter / min(h, w)
    nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
    return nh, nw, (nh - th) // 2, (nw - tw) // 2, th, tw


def fit(img: torch.Tensor, size: tuple[int, int], shorter: float) -> torch.Tensor:
    """Resize so the shorter side fits size/shorter, then take the centred crop of `size`."""
    h, w = img.shape[-2:]
    if (h, w) == tuple(size):
        return img
    nh, nw, top, left, th, tw = eval_geometry(h, w, size, shorter)
    img = resize_uint8(img, (nh, nw))
    return img[:, top:top + th, left:left + tw]


def place(img: torch.Tensor, box: Box, size: tuple[int, int], shorter: float) -> torch.Tensor:
    """A decoded uint8 image brought to `size`: its box cut and resized, or (box None)
    evaluation's resize and centre crop."""
    if box is None:
        return fit(img, size, shorter)
    top, left, bh, bw = box
    return resize_uint8(img[:, top:top + max(bh, 1), left:left + max(bw, 1)], size)


def _said() -> None:
    global _said_draft
    if not _said_draft:
        _said_draft = True
        log.info("photos much larger than the input are decoded at a reduced DCT scale "
                 "(Pillow's draft mode): faster, and the pixels differ slightly from a full "
                 "decode")


def fast_jpeg(data: bytes | memoryview, channels: int, size: tuple[int, int],
              choose_box: Callable[[int, int], Box], shorter: float) -> torch.Tensor | None:
    """A plain JPEG (RGB or grey, no EXIF rotation) decoded and sized, or None when the file
    needs the general reader (another format or mode, or any decoding trouble: the general
    reader then names the failure)."""
    if bytes(data[:2]) != JPEG_MAGIC:
        return None
    from PIL import Image

    try:
        im = Image.open(io.BytesIO(data))  # reads the header only
        if im.mode not in ("RGB", "L") or (channels == 1 and im.mode != "L"):
            return None
        if "exif" in im.info and im.getexif().get(_ORIENTATION, 1) not in (1, None):
            return None
        w, h = im.size
        box = choose_box(h, w)
        th, tw = size
        if box is None:
            nh, nw, top, left, _, _ = eval_geometry(h, w, size, shorter)
            fbox = (top * h / nh, left * w / nw, th * h / nh, tw * w / nw)
        else:
            fbox = tuple(float(v) for v in box)  # type: ignore[assignment]
        if min(fbox[2] / th, fbox[3] / tw) >= DRAFT_MIN_REDUCTION:
            return _drafted(im, fbox, size, channels, w)
        img = torchvision_jpeg(data, channels)
        if img is None:  # Pillow's libjpeg-turbo: the same pixels
            img = pillow_pixels(im, channels)
        im.close()
        if tuple(img.shape[-2:]) != (h, w):
            return None
        return place(img, box, size, shorter)
    except Exception:  # noqa: BLE001 - the general reader reports it by path
        return None


def _drafted(im, fbox: tuple[float, float, float, float], size: tuple[int, int],
             channels: int, full_w: int) -> torch.Tensor:
    from PIL import Image

    th, tw = size
    top, left, bh, bw = fbox
    w, h = im.size
    # the smallest DCT scale whose image still gives the box at least the output's pixels
    im.draft(im.mode, (math.ceil(w * tw / bw), math.ceil(h * th / bh)))
    s = im.size[0] / full_w
    if s < 1:
        _said()
    out = im.resize((tw, th), Image.Resampling.BILINEAR,
                    box=(left * s, top * s, (left + bw) * s, (top + bh) * s))
    if channels == 3 and out.mode != "RGB":
        out = out.convert("RGB")
    a = np.asarray(out)
    t = torch.from_numpy(a.copy())
    return t[None] if t.dim() == 2 else t.permute(2, 0, 1)


def raw_sized(a: np.ndarray, channels: int, size: tuple[int, int],
              choose_box: Callable[[int, int], Box], shorter: float) -> torch.Tensor:
    """A stored H x W x C uint8 array (a packed raw record, read-only) brought to `size`:
    only the box is copied out of the memory map."""
    box = choose_box(a.shape[0], a.shape[1])
    if box is not None:
        top, left, bh, bw = box
        a = a[top:top + max(bh, 1), left:left + max(bw, 1)]
        box = (0, 0, a.shape[0], a.shape[1])
    img = torch.from_numpy(np.array(a)).permute(2, 0, 1)
    if img.shape[0] == 1 and channels == 3:
        img = img.expand(3, -1, -1)
    return place(img, box, size, shorter)
