"""Where in an image a network finds its evidence for a class, two ways:

- Grad-CAM (Selvaraju et al. 2017): the last convolutional features, each channel weighted by
  the mean gradient of the class's logit over it, summed and passed through a ReLU; a coarse
  map (the features' resolution) scaled up to the image.
- Occlusion (Zeiler and Fergus 2014, section 4.2): a grey square (the mean colour: 0 after
  normalisation) slid over the image; at each place, how far the class's probability falls.
  No gradients, any model, as fine as the stride.

Both give an H x W map scaled to 0..1 (0 where the map is flat); the picture shows the image and
each map laid over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserInputError


@dataclass
class Saliency:
    target: int  # the class explained
    prob: float  # its probability on the whole image
    gradcam: torch.Tensor  # H x W, 0..1
    occlusion: torch.Tensor  # H x W, 0..1
    patch: int
    stride: int


def _logits(out: object) -> torch.Tensor:
    return out.logits if hasattr(out, "logits") else out  # type: ignore[return-value]


def _scaled(m: torch.Tensor) -> torch.Tensor:
    m = m - m.min()
    top = m.max()
    return m / top if top > 0 else m


def gradcam(model: nn.Module, x: torch.Tensor, target: int | None = None) -> tuple[torch.Tensor,
                                                                                  int]:
    """(H x W Grad-CAM map of `x` (1 x C x H x W) for class `target`, the class) on the
    output of `model.forward_features`; `target` None: the predicted class."""
    if not hasattr(model, "forward_features") or not hasattr(model, "forward_head"):
        raise UserInputError(f"{type(model).__name__} has no forward_features/forward_head: "
                             "Grad-CAM needs the last convolutional features")
    model.eval()
    with torch.enable_grad():
        feats = model.forward_features(x).detach().requires_grad_(True)
        if feats.dim() != 4:
            raise UserInputError("the model's features have no spatial map (shape "
                                 f"{tuple(feats.shape)}): use occlusion")
        logits = _logits(model.forward_head(feats))
        k = int(logits[0].argmax()) if target is None else target
        (grad,) = torch.autograd.grad(logits[0, k], feats)
    weights = grad.mean(dim=(2, 3), keepdim=True)  # one weight per channel
    cam = F.relu((weights * feats.detach()).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return _scaled(cam[0, 0]), k


@torch.no_grad()
def occlusion(model: nn.Module, x: torch.Tensor, target: int, patch: int, stride: int,
              batch: int = 64) -> torch.Tensor:
    """H x W map: how much `target`'s probability falls when a `patch` square around each
    pixel is set to 0 (the mean colour), averaged over the squares that cover the pixel."""
    if patch < 1 or stride < 1:
        raise UserInputError(f"--patch and --stride must be at least 1 (got {patch}, {stride})")
    model.eval()
    _, _, h, w = x.shape
    base = _logits(model(x)).float().softmax(-1)[0, target]
    ys = list(range(0, max(h - patch, 0) + 1, stride))
    xs = list(range(0, max(w - patch, 0) + 1, stride))
    if ys[-1] + patch < h:
        ys.append(h - patch)
    if xs[-1] + patch < w:
        xs.append(w - patch)
    places = [(a, b) for a in ys for b in xs]
    drop = torch.zeros(h, w)
    count = torch.zeros(h, w)
    for s in range(0, len(places), batch):
        chunk = places[s:s + batch]
        xb = x.repeat(len(chunk), 1, 1, 1)
        for i, (a, b) in enumerate(chunk):
            xb[i, :, a:a + patch, b:b + patch] = 0
        p = _logits(model(xb)).float().softmax(-1)[:, target]
        for (a, b), v in zip(chunk, (base - p).tolist()):
            drop[a:a + patch, b:b + patch] += v
            count[a:a + patch, b:b + patch] += 1
    return _scaled((drop / count.clamp_min(1)).clamp_min(0))


def saliency(model: nn.Module, x: torch.Tensor, target: int | None = None,
             patch: int | None = None, stride: int | None = None) -> Saliency:
    """Grad-CAM and occlusion maps of `x` for `target` (default: the predicted class); the
    occluding square is an eighth of the image's side by default, moved by half of it."""
    cam, k = gradcam(model, x, target)
    side = min(x.shape[-2:])
    patch = patch or max(1, side // 8)
    stride = stride or max(1, patch // 2)
    with torch.no_grad():
        prob = float(_logits(model(x)).float().softmax(-1)[0, k])
    occ = occlusion(model, x, k, patch, stride)
    return Saliency(k, prob, cam, occ, patch, stride)


def draw_saliency(x: torch.Tensor, s: Saliency, out: str | Path, title: str) -> Path:
    """The image, Grad-CAM over it and occlusion over it, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = x[0].detach().float()
    img = torch.stack([_scaled(c) for c in img])  # each channel to 0..1, for display
    shown = img[0] if img.shape[0] == 1 else img[:3].permute(1, 2, 0)
    cmap = "gray" if img.shape[0] == 1 else None
    fig, axes = plt.subplots(1, 3, figsize=(11, 4.2))
    panels = (("the image\n(as the model sees it)", None),
              ("Grad-CAM\n(gradient-weighted last features)", s.gradcam),
              (f"occlusion: fall in probability\n({s.patch}px square, stride {s.stride})",
               s.occlusion))
    for ax, (name, m) in zip(axes, panels):
        ax.imshow(shown.numpy(), cmap=cmap)
        if m is not None:
            shade = ax.imshow(m.numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.colorbar(shade, ax=list(axes), fraction=0.02, label="evidence for the class (0..1)")
    fig.suptitle(title, fontsize=11)
    path = Path(out)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
