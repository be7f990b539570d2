"""The papers' training augmentations as batch operations: VGG's scale jittering and AlexNet's
PCA lighting noise.

As in `augment.py`, every random parameter is drawn beforehand on the CPU from a seeded
generator (`sample_*`), and the operation applies them to a whole batch on its own device.

Scale jittering (Simonyan and Zisserman 2014, section 3.1): each training image is rescaled
isotropically so its smallest side is S, drawn uniformly from [S_min, S_max] (the paper: 256
to 512), and a crop of the training size (224) is cut at a random place. Rescaling then
cropping is one box of the original image resized to the crop (side crop * min(H, W) / S), so
the boxes feed `augment.resized_crop`, one `grid_sample` for the batch, like the random
resized crop.

PCA lighting (Krizhevsky et al. 2012, section 4.1): "to each training image, we add multiples
of the found principal components, with magnitudes proportional to the corresponding
eigenvalues times a random variable drawn from a Gaussian with mean zero and standard deviation
0.1": every pixel of an image gets the same RGB offset sum_i alpha_i lambda_i v_i, where
(lambda_i, v_i) are the eigenvalues and eigenvectors of the 3x3 covariance of the training
set's RGB values. The eigenvalues are of pixels on the 0..1 scale (the paper does not say its
scale; on 0..255 the literal formula would shift colours by hundreds of levels), as the common
ports do. `magnitude="sqrt"` scales by sqrt(lambda_i) instead, so the offset's covariance is
sigma^2 times the data's own colour covariance.
"""

from __future__ import annotations

import torch

from ..errors import UserInputError
from .augment import resized_crop

# ---------------------------------------------------------------- scale jittering


def sample_scale_jitter(n: int, h: int, w: int, crop: int, s_min: int, s_max: int,
                        g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes (top, left, height, width) in the original image's pixels, n x 4, and the drawn
    smallest sides S (n), for rescale-to-S then a random crop x crop.

    S is a whole number drawn uniformly from [s_min, s_max]; the crop's offset is a whole
    number of pixels of the rescaled image."""
    if not crop <= s_min <= s_max:
        raise UserInputError(f"scale jittering needs crop <= S_min <= S_max, got crop {crop}, "
                             f"S in [{s_min}, {s_max}]")
    s = torch.randint(s_min, s_max + 1, (n,), generator=g).double()
    m = float(min(h, w))
    factor = s / m  # rescaled pixels per original pixel
    rh, rw = (h * factor).round(), (w * factor).round()  # the rescaled image's size
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    top = (u[:, 0] * (rh - crop + 1)).floor().clamp(max=rh - crop)
    left = (u[:, 1] * (rw - crop + 1)).floor().clamp(max=rw - crop)
    side_h, side_w = crop * h / rh, crop * w / rw  # a crop x crop window, in original pixels
    boxes = torch.stack([top * h / rh, left * w / rw, side_h, side_w], 1)
    return boxes.float(), s.long()


def scale_jitter(x: torch.Tensor, boxes: torch.Tensor, crop: int,
                 flip: torch.Tensor | None = None) -> torch.Tensor:
    """Cut every image's box and bring it to crop x crop (bilinear; flipped where `flip`).

    uint8 batches come back as uint8 (rounded), float batches as float, on x's device."""
    out = resized_crop(x.float(), boxes, (crop, crop), flip)
    if x.dtype == torch.uint8:
        return out.round().clamp(0, 255).to(torch.uint8)
    return out.to(x.dtype)


# ---------------------------------------------------------------- PCA lighting


def rgb_covariance(images: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """The 3x3 covariance of the RGB values of every pixel of N x 3 x H x W images, on the
    0..1 scale (uint8 images are divided by 255), exact in float64, a chunk of images at a
    time so no float copy of the whole set is made."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise UserInputError(f"PCA lighting needs RGB images (N x 3 x H x W), got "
                             f"{tuple(images.shape)}")
    scale = 255.0 if images.dtype == torch.uint8 else 1.0
    total = torch.zeros(3, dtype=torch.float64)
    outer = torch.zeros(3, 3, dtype=torch.float64)
    count = 0
    for s in range(0, images.shape[0], chunk):
        p = images[s:s + chunk].to(torch.float64).div_(scale).permute(1, 0, 2, 3).reshape(3, -1)
        total += p.sum(1).cpu()
        outer += (p @ p.T).cpu()
        count += p.shape[1]
    if count < 2:
        raise UserInputError("PCA lighting needs at least two pixels")
    mean = total / count
    return (outer - count * torch.outer(mean, mean)) / (count - 1)


def rgb_eigen(images: torch.Tensor | None = None, *,
              covariance: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(eigenvalues, eigenvectors) of the RGB covariance, the largest first; eigenvector i is
    column i, signed so its largest component is positive (so the same data give the same
    vectors everywhere). From images, or from a covariance given directly."""
    cov = rgb_covariance(images) if covariance is None else covariance.to(torch.float64)
    vals, vecs = torch.linalg.eigh(cov)
    vals, vecs = vals.flip(0).clamp_min(0), vecs.flip(1)
    sign = torch.sign(vecs.gather(0, vecs.abs().argmax(0, keepdim=True)))
    return vals.float(), (vecs * sign).float()


def sample_lighting(n: int, sigma: float, g: torch.Generator) -> torch.Tensor:
    """The paper's alpha_i ~ N(0, sigma^2), n x 3 (sigma 0.1 in the paper)."""
    return torch.randn(n, 3, generator=g) * sigma


def lighting_offsets(alphas: torch.Tensor, eigvals: torch.Tensor, eigvecs: torch.Tensor,
                     magnitude: str = "eigenvalue") -> torch.Tensor:
    """The RGB offset of each image, n x 3 on the 0..1 scale: sum_i alpha_i lambda_i v_i
    (`magnitude` 'eigenvalue', the paper) or sum_i alpha_i sqrt(lambda_i) v_i ('sqrt')."""
    if magnitude == "eigenvalue":
        weights = eigvals
    elif magnitude == "sqrt":
        weights = eigvals.clamp_min(0).sqrt()
    else:
        raise UserInputError(f"unknown lighting magnitude {magnitude!r}: eigenvalue or sqrt")
    return (alphas.to(eigvecs) * weights.to(eigvecs)) @ eigvecs.T


def pca_lighting(x: torch.Tensor, offsets: torch.Tensor, pixel_scale: float | None = None,
                 clamp: bool | None = None) -> torch.Tensor:
    """Add each image's RGB offset (n x 3, 0..1 scale) to every pixel of a B x 3 x H x W batch.

    `pixel_scale`: what 1.0 is in the batch's units; default 255 for uint8 and 1 for floats
    (give 255 for a float batch still on the 0..255 scale, as inside the loader). uint8
    batches are rounded and clamped to 0..255 and stay uint8; float batches are clamped to
    the 0..pixel_scale range only when `clamp` says so."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise UserInputError(f"PCA lighting needs RGB batches, got {tuple(x.shape)}")
    is_byte = x.dtype == torch.uint8
    scale = pixel_scale if pixel_scale is not None else (255.0 if is_byte else 1.0)
    shift = (offsets.to(x.device, torch.float32) * scale)[:, :, None, None]
    out = x.float() + shift
    if is_byte:
        return out.round_().clamp_(0, 255).to(torch.uint8)
    if clamp:
        out = out.clamp_(0, scale)
    return out.to(x.dtype)


__all__ = ["lighting_offsets", "pca_lighting", "rgb_covariance", "rgb_eigen",
           "sample_lighting", "sample_scale_jitter", "scale_jitter"]
