"""Augmentation and input adaptation on whole batches, on whichever device the batch lives.

Every operation here takes a batch and per-image parameters drawn beforehand (on the CPU, from
a seeded generator), so there is no Python loop over images and the same parameters give the
same pixels on the CPU and on a GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserInputError

#: A larger target is reached by zero padding (centred) when it exceeds the source by at most
#: this many pixels per side pair, as LeNet-5 was fed 28x28 MNIST digits in a 32x32 field;
#: beyond it the images are resized.
MAX_PAD = 8


@dataclass(frozen=True)
class Augment:
    crop_pad: int = 0  # random crop of the image zero-padded by this much (CIFAR: 4)
    flip: bool = False  # random horizontal flip
    random_resized_crop: bool = False  # for larger images: a random box, resized to the input
    scale: tuple[float, float] = (0.08, 1.0)  # of the box's area, as a fraction of the image
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # of the box's width to height
    # VGG's scale jittering: the smallest side S drawn from [lo, hi] x the input side, then a
    # random crop of the input size (the paper: S in [256, 512] for 224 crops)
    scale_jitter: tuple[float, float] | None = None
    pca_lighting: float = 0.0  # AlexNet's PCA lighting noise: sigma of the alphas (paper 0.1)


#: Every preset by name: what recipes, `--augment` and `get_augment` accept.
AUGMENTS: dict[str, Augment] = {
    "none": Augment(),
    "flip": Augment(flip=True),
    "crop": Augment(crop_pad=4),
    "cifar": Augment(crop_pad=4, flip=True),  # He et al. 2015's CIFAR-10 augmentation
    "crop_flip": Augment(crop_pad=4, flip=True),  # the same, named for what it does
    # small images: a shift of up to 2 pixels keeps a 28x28 digit or garment whole
    "shift": Augment(crop_pad=2),
    "shift_flip": Augment(crop_pad=2, flip=True),
    "imagenet": Augment(random_resized_crop=True, flip=True),
    # Simonyan and Zisserman 2014, section 3.1: S from [256, 512], a random 224 crop, flips
    "vgg_scale_jitter": Augment(flip=True, scale_jitter=(256 / 224, 512 / 224)),
    # Krizhevsky et al. 2012, section 4.1: random 224 crops of the image at 256, flips, and
    # PCA lighting with sigma 0.1 (eigenvectors of the training set's RGB covariance)
    "alexnet_pca": Augment(flip=True, scale_jitter=(256 / 224, 256 / 224), pca_lighting=0.1),
}


def _fallback_box(h: int, w: int, ratio: tuple[float, float]) -> tuple[int, int]:
    """(width, height) of the whole image cropped to the nearest allowed aspect ratio: the
    random-resized crop's box when no random draw fits (torchvision's rule)."""
    in_ratio = w / h
    if in_ratio < ratio[0]:
        return w, round(w / ratio[0])
    if in_ratio > ratio[1]:
        return round(h * ratio[1]), h
    return w, h


def augment_names() -> list[str]:
    """The presets' names, in the table's order (for help texts and error messages)."""
    return list(AUGMENTS)


def get_augment(spec: str | dict[str, Any] | Augment | None) -> Augment | None:
    """An Augment from a preset's name, a table of Augment's fields (a recipe's
    `augment = {crop_pad = 2}`), an Augment, or None (no augmentation)."""
    if spec is None or isinstance(spec, Augment):
        return spec
    if isinstance(spec, dict):
        try:
            return Augment(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in spec.items()})
        except TypeError as e:
            raise UserInputError(f"augment: {e}; the fields are "
                                 f"{', '.join(f.name for f in fields(Augment))}") from None
    try:
        return AUGMENTS[spec]
    except (KeyError, TypeError):
        raise UserInputError(f"unknown augmentation preset {spec!r}; choose from "
                             f"{', '.join(AUGMENTS)} or give a table of Augment fields") \
            from None


# ---------------------------------------------------------------- adaptation plan


@dataclass(frozen=True)
class Plan:
    """How images stored as `src` become what a model expects, `dst` (both C, H, W)."""

    src: tuple[int, int, int]
    dst: tuple[int, int, int]
    channels: str  # "keep", "replicate" (1 -> C) or "average" (C -> 1)
    spatial: str  # "keep", "pad" or "resize"
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # left, right, top, bottom (F.pad's order)


def plan(src: tuple[int, int, int], dst: tuple[int, int, int]) -> Plan:
    (c, h, w), (dc, dh, dw) = src, dst
    if c == dc:
        channels = "keep"
    elif c == 1:
        channels = "replicate"
    elif dc == 1:
        channels = "average"
    else:
        raise UserInputError(f"cannot feed {c}-channel images to a model that expects {dc} "
                             "channels; pass in_channels to the model")
    dy, dx = dh - h, dw - w
    if (dy, dx) == (0, 0):
        return Plan(src, dst, channels, "keep")
    if 0 <= dy <= MAX_PAD and 0 <= dx <= MAX_PAD:
        return Plan(src, dst, channels, "pad", (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))
    return Plan(src, dst, channels, "resize")


def adaptation(ds_size: tuple[int, int, int], input_size: tuple[int, int, int]) -> list[str]:
    """What is done to the images so the model can take them, as lines for the log."""
    p = plan(tuple(ds_size), tuple(input_size))  # type: ignore[arg-type]
    (c, h, w), (dc, dh, dw) = p.src, p.dst
    lines = []
    if p.spatial == "pad":
        left, right, top, bottom = p.pad
        sides = (f"{top}/{bottom}/{left}/{right} pixels top/bottom/left/right"
                 if len({left, right, top, bottom}) > 1 else f"{left} pixels on every side")
        lines.append(f"{h}x{w} images zero-padded to {dh}x{dw} ({sides}), "
                     "as LeNet-5 took 28x28 digits in a 32x32 field")
    elif p.spatial == "resize":
        lines.append(f"{h}x{w} images resized to {dh}x{dw} (bilinear)")
    if p.channels == "replicate":
        lines.append(f"1-channel (grayscale) images replicated to {dc} channels")
    elif p.channels == "average":
        lines.append(f"{c}-channel images averaged to 1 channel (grayscale)")
    return lines


# ---------------------------------------------------------------- batched operations


def shift_flip(x: torch.Tensor, shift: torch.Tensor | None,
               flip: torch.Tensor | None) -> torch.Tensor:
    """Random crop with zero padding and horizontal flip, in one gather.

    x: B x C x H x W (any dtype); shift: B x 2 integer (dy, dx) in [-pad, pad], the crop's
    offset in the padded image minus pad; flip: B bools. Output pixel (i, j) is input pixel
    (i + dy, j' + dx) with j' = W-1-j for flipped images, zero where that falls outside."""
    b, c, h, w = x.shape
    dev = x.device
    rows = torch.arange(h, device=dev).expand(b, h)
    cols = torch.arange(w, device=dev).expand(b, w)
    if flip is not None:
        cols = torch.where(flip[:, None], w - 1 - cols, cols)
    if shift is not None:
        rows = rows + shift[:, :1]
        cols = cols + shift[:, 1:]
    index = rows.clamp(0, h - 1)[:, :, None] * w + cols.clamp(0, w - 1)[:, None, :]
    out = x.reshape(b, c, h * w).gather(2, index.view(b, 1, h * w).expand(b, c, h * w))
    out = out.view(b, c, h, w)
    if shift is not None:
        inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        out = out * inside[:, None]  # a multiply is much cheaper than where() on the CPU
    return out


def sample_shift_flip(n: int, pad: int, flip: bool,
                      g: torch.Generator) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    shift = torch.randint(-pad, pad + 1, (n, 2), generator=g) if pad > 0 else None
    flips = torch.rand(n, generator=g) < 0.5 if flip else None
    return shift, flips


def sample_boxes(n: int, h: int, w: int, scale: tuple[float, float],
                 ratio: tuple[float, float], g: torch.Generator,
                 tries: int = 10) -> torch.Tensor:
    """n random-resized-crop boxes (top, left, height, width) in pixels, vectorised.

    As in the usual recipe (Szegedy et al. 2015): area a random fraction of the image's, aspect
    ratio log-uniform; up to `tries` draws per image, the first that fits wins; if none fits,
    the largest centred box with the aspect ratio clamped to the range."""
    area = h * w
    target = area * torch.empty(n, tries).uniform_(scale[0], scale[1], generator=g)
    log_r = torch.empty(n, tries).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=g)
    r = log_r.exp()
    bw = (target * r).sqrt().round()
    bh = (target / r).sqrt().round()
    fits = (bw >= 1) & (bw <= w) & (bh >= 1) & (bh <= h)
    first = fits.int().argmax(1)
    ok = fits.any(1)
    bw = bw.gather(1, first[:, None]).squeeze(1)
    bh = bh.gather(1, first[:, None]).squeeze(1)
    # fallback: the whole image cropped to the nearest allowed aspect ratio
    fw, fh = _fallback_box(h, w, ratio)
    bw = torch.where(ok, bw, torch.tensor(float(fw)))
    bh = torch.where(ok, bh, torch.tensor(float(fh)))
    u = torch.rand(n, 2, generator=g)
    top = torch.where(ok, (u[:, 0] * (h - bh + 1)).floor(), torch.tensor(float((h - fh) // 2)))
    left = torch.where(ok, (u[:, 1] * (w - bw + 1)).floor(), torch.tensor(float((w - fw) // 2)))
    return torch.stack([top, left, bh, bw], 1)


def resized_crop(x: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int],
                 flip: torch.Tensor | None = None) -> torch.Tensor:
    """Crop every image of a float batch to its box and resize it to `size` (bilinear, one
    grid_sample for the whole batch); a flip is a negative horizontal scale. No antialiasing:
    boxes are usually enlarged, and a shrunk one aliases a little, as a plain resize would."""
    b, _, h, w = x.shape
    boxes = boxes.to(x.device, torch.float32)
    top, left, bh, bw = boxes.unbind(1)
    sx, sy = bw / w, bh / h
    if flip is not None:
        sx = torch.where(flip.to(x.device), -sx, sx)
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0] = sx
    theta[:, 0, 2] = (2 * left + bw) / w - 1
    theta[:, 1, 1] = sy
    theta[:, 1, 2] = (2 * top + bh) / h - 1
    grid = F.affine_grid(theta, [b, x.shape[1], *size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a float batch, antialiased when shrinking."""
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def sample_box(h: int, w: int, scale: tuple[float, float], ratio: tuple[float, float],
               g: torch.Generator, tries: int = 10) -> tuple[int, int, int, int]:
    """One random-resized-crop box (top, left, height, width): the same draws from `g` and the
    same float32 arithmetic as `sample_boxes(1, ...)`, so the same box, without a dozen small
    tensor operations (which cost about 1 ms an image, as much as decoding a photo)."""
    f32 = np.float32
    target = (f32(h * w) * torch.empty(1, tries).uniform_(scale[0], scale[1], generator=g)
              .numpy()[0])
    log_r = torch.empty(1, tries).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=g)
    r = log_r.exp().numpy()[0]  # torch's exp, so the ratio matches sample_boxes' bit for bit
    bws = np.sqrt(target * r).round()
    bhs = np.sqrt(target / r).round()
    u = torch.rand(1, 2, generator=g).numpy()[0]
    for bw, bh in zip(bws.tolist(), bhs.tolist(), strict=True):
        if 1 <= bw <= w and 1 <= bh <= h:
            top = int(np.floor(u[0] * f32(h - bh + 1)))
            left = int(np.floor(u[1] * f32(w - bw + 1)))
            return top, left, int(bh), int(bw)
    fw, fh = _fallback_box(h, w, ratio)
    return (h - fh) // 2, (w - fw) // 2, fh, fw
