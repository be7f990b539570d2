"""The papers' test-time methods: centre crop, flip, AlexNet's ten crops, VGG's multi-scale
test and dense evaluation (fully connected layers applied as convolutions).

Every method takes a batch at a "full" size (e.g. 256x256 for a 224 crop, as AlexNet resized
its images to 256 and cut 224 crops), computes the model's class probabilities on each view
and averages them, as both papers did ("averaging the predictions made by the network's
softmax layer on the ten patches", Krizhevsky et al. 2012; "averaging the soft-max class
posteriors", Simonyan and Zisserman 2014). Dense evaluation first averages the class score
map over space (VGG's sum-pooling) and then takes the softmax.

Choices:
- `none` and `centre` are the same: the centre crop of the crop size (the whole batch when it
  already is that size).
- `multiscale:Q1,Q2,...` resizes each batch so its smallest side is Q. A model whose head pools
  globally (EfficientNet, ResNet, ...) takes the whole resized image, as VGG's fully
  convolutional test did; any other model gets the centre crop of each scale.
- `dense` converts the head's Linear layers to equivalent convolutions (`dense_model`), so the
  model slides over a larger image and gives a map of class scores; `dense:Q1,Q2` does this at
  several scales and averages, which is VGG's multi-scale dense test. Only heads of the form
  [adaptive pool to k x k] -> flatten -> Linear -> ... (VGG, AlexNet) can be converted.
- Resizing a normalised batch is the same as normalising a resized one (bilinear weights sum
  to one), so the views are cut from the loader's normalised output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserInputError
from ..models.base import split_output

METHODS = ("none", "centre", "flip", "ten-crop", "multiscale", "dense")


@dataclass(frozen=True)
class TestMethod:
    """A parsed method: its kind and, for multiscale and dense, the smallest sides Q."""

    kind: str
    scales: tuple[int, ...] = ()

    def __str__(self) -> str:
        return self.kind + (":" + ",".join(map(str, self.scales)) if self.scales else "")

    def views(self) -> int:
        """Forward passes per image."""
        return {"ten-crop": 10, "flip": 2}.get(self.kind, max(1, len(self.scales)))


#: The largest image side a test-time method may ask for (VGG's largest scale was 512).
MAX_SCALE = 4096


def parse_method(spec: str | TestMethod) -> TestMethod:
    """'none' | 'centre' | 'flip' | 'ten-crop' | 'multiscale:256,384,512' | 'dense[:Q,...]'."""
    if isinstance(spec, TestMethod):
        return spec
    kind, _, rest = spec.strip().lower().partition(":")
    kind = {"center": "centre", "centre-crop": "centre", "center-crop": "centre",
            "tencrop": "ten-crop", "10-crop": "ten-crop", "multi-scale": "multiscale"}.get(kind,
                                                                                          kind)
    if kind not in METHODS:
        raise UserInputError(f"unknown test-time method {spec!r}; choose none, flip, ten-crop, "
                             "multiscale:Q1,Q2,... or dense[:Q1,...]")
    scales: tuple[int, ...] = ()
    if rest:
        if kind not in ("multiscale", "dense"):
            raise UserInputError(f"{kind} takes no scales (got {spec!r})")
        try:
            scales = tuple(int(q) for q in rest.split(",") if q.strip())
        except ValueError:
            raise UserInputError(f"bad scales in {spec!r}: write e.g. multiscale:256,384,512") \
                from None
        if not scales or min(scales) < 1:
            raise UserInputError(f"bad scales in {spec!r}: give positive image sides")
        if max(scales) > MAX_SCALE:  # a batch of such images would not fit any memory
            raise UserInputError(f"bad scales in {spec!r}: image sides up to {MAX_SCALE}")
    elif kind == "multiscale":
        raise UserInputError("multiscale needs its scales, e.g. multiscale:256,384,512")
    return TestMethod(kind, scales)


def full_size(method: TestMethod, crop: int) -> int:
    """The side the loader should give images at: the largest scale; crop / 0.875 for ten-crop
    (256 for 224, as AlexNet resized its images); the crop itself for the single view and flip,
    which see the image as training's evaluation does."""
    if method.scales:
        return max(method.scales)
    if method.kind in ("none", "centre", "flip") or crop <= 0:
        return crop
    return round(crop / 0.875)


# ---------------------------------------------------------------- views


def _side(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _fits(x: torch.Tensor, h: int, w: int) -> None:
    if x.shape[-2] < h or x.shape[-1] < w:
        raise UserInputError(f"a {h}x{w} crop does not fit a {x.shape[-2]}x{x.shape[-1]} "
                             "image; give a larger image size or a smaller crop")


def centre_crop(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """The centre h x w of a B x C x H x W batch (rounded towards the top left)."""
    h, w = _side(size)
    _fits(x, h, w)
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., top:top + h, left:left + w]


def ten_crops(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """AlexNet's ten views, 10 x B x C x h x w: the four corners and the centre (top left, top
    right, bottom left, bottom right, centre), then each of those five crops mirrored.

    Mirroring the crops is not the same as cropping the mirrored image when the margin is odd
    (the centre crop rounds towards the top left, so its mirror sits one pixel to the right of
    the mirrored image's centre crop); AlexNet's wording ("and their horizontal reflections")
    is the crops' reflections, which is what this does."""
    h, w = _side(size)
    _fits(x, h, w)
    ih, iw = x.shape[-2:]
    corners = [x[..., :h, :w], x[..., :h, iw - w:], x[..., ih - h:, :w],
               x[..., ih - h:, iw - w:], centre_crop(x, (h, w))]
    five = torch.stack(corners)
    return torch.cat([five, five.flip(-1)])


def resize_smallest(x: torch.Tensor, q: int) -> torch.Tensor:
    """The batch resized (bilinear, antialiased when shrinking) so its smallest side is q."""
    h, w = x.shape[-2:]
    s = q / min(h, w)
    size = (max(q, round(h * s)), max(q, round(w * s)))
    if size == (h, w):
        return x
    shrink = size[0] < h
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def multiscale_views(x: torch.Tensor, scales: Sequence[int],
                     crop: int | tuple[int, int] | None = None) -> list[torch.Tensor]:
    """One view per scale Q: the batch at smallest side Q, whole (crop None) or its centre crop."""
    views = [resize_smallest(x, q) for q in scales]
    return views if crop is None else [centre_crop(v, crop) for v in views]


def pools_globally(model: nn.Module) -> bool:
    """Whether the model's head reduces any feature map to one vector (a 1x1 adaptive pool),
    so a whole image of any size can go in."""
    head = getattr(model, "head", model)
    return any(isinstance(m, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d)
               and _side(m.output_size if m.output_size is not None else 1) == (1, 1)
               for m in head.modules())


# ---------------------------------------------------------------- dense evaluation


class DenseNet(nn.Module):
    """A model whose head's Linear layers run as convolutions: any input at least as large as
    the training size gives a B x K x h x w map of class scores (1x1 at the training size)."""

    def __init__(self, model: nn.Module, head: nn.Sequential) -> None:
        super().__init__()
        self.model = model
        self.dense_head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense_head(self.model.forward_features(x))


def _conv_from_linear(fc: nn.Linear, channels: int, k: int) -> nn.Conv2d:
    if fc.in_features != channels * k * k:
        raise ValueError("in_features")
    conv = nn.Conv2d(channels, fc.out_features, k, bias=fc.bias is not None)
    conv.to(device=fc.weight.device, dtype=fc.weight.dtype)
    with torch.no_grad():
        # Flatten(1) of a C x k x k map orders the inputs channel by channel, row by row: the
        # same order as a Conv2d kernel's (C, k, k)
        conv.weight.copy_(fc.weight.view(fc.out_features, channels, k, k))
        if fc.bias is not None:
            conv.bias.copy_(fc.bias)
    return conv


def _feature_channels(model: nn.Module) -> int:
    convs = [m for m in model.stages.modules() if isinstance(m, nn.Conv2d)] \
        if hasattr(model, "stages") else []
    if not convs:
        raise UserInputError("dense evaluation needs a model whose stages end in convolutions")
    return convs[-1].out_channels


def dense_model(model: nn.Module) -> DenseNet:
    """The model with its head's fully connected layers as convolutions (VGG, AlexNet).

    The head must be `head.pre` = [AdaptiveAvgPool2d(k)] -> Flatten -> Linear -> (activations,
    dropout, Linear)* and `head.fc` a Linear: the first Linear becomes a k x k convolution
    (k from the pool, or from its width when there is no pool), the others 1x1 convolutions.
    The adaptive pool is dropped: at the training size it passes the k x k map through, and
    on a larger image the convolution slides over the map instead. Shares the weights."""
    name = getattr(model, "model_name", type(model).__name__)
    head = getattr(model, "head", None)
    pre = getattr(head, "pre", None)
    if not isinstance(pre, nn.Sequential):
        raise UserInputError(f"{name} has no fully connected head to run as convolutions; "
                             "dense evaluation is for VGG and AlexNet")
    channels = _feature_channels(model)
    layers: list[nn.Module] = []
    k: int | None = None
    seen_flatten, first = False, True
    for m in pre:
        if isinstance(m, nn.AdaptiveAvgPool2d) and not seen_flatten:
            size = _side(m.output_size)
            if size[0] != size[1]:
                raise UserInputError(f"{name}: dense evaluation needs a square pool")
            k = size[0]
        elif isinstance(m, nn.Flatten):
            seen_flatten = True
        elif isinstance(m, nn.Linear):
            if not seen_flatten:
                raise UserInputError(f"{name}: a Linear layer before the flatten")
            if first:
                kk = k if k is not None else math.isqrt(m.in_features // channels)
                if m.in_features != channels * kk * kk:
                    raise UserInputError(f"{name}: its first fully connected layer takes "
                                         f"{m.in_features} values, not {channels} x k x k")
                layers.append(_conv_from_linear(m, channels, kk))
                first = False
            else:
                layers.append(_conv_from_linear(m, m.in_features, 1))
        elif isinstance(m, nn.Dropout | nn.Identity) or not list(m.parameters()):
            layers.append(m)  # activations and dropout act per element: the same on a map
        else:
            raise UserInputError(f"{name}: cannot run a {type(m).__name__} of the head as a "
                                 "convolution; dense evaluation is for VGG and AlexNet")
    if first:
        raise UserInputError(f"{name} has no fully connected head to run as convolutions")
    fc = getattr(head, "fc", None)
    if isinstance(fc, nn.Linear):
        layers += [getattr(head, "drop", nn.Identity()), _conv_from_linear(fc, fc.in_features, 1)]
    elif not isinstance(fc, nn.Identity):
        raise UserInputError(f"{name}: its last layer is a {type(fc).__name__}, not a Linear")
    dense = DenseNet(model, nn.Sequential(*layers))
    dense.train(model.training)
    return dense


# ---------------------------------------------------------------- one batch


def view_logits(model: nn.Module, x: torch.Tensor, method: str | TestMethod,
                crop: int | tuple[int, int], dense: DenseNet | None = None) -> list[torch.Tensor]:
    """The B x K logits of each of the method's views of a batch.

    `x`: the normalised batch at its full size (see `full_size`); `crop`: the model's input
    size. `dense`: the converted model for method dense (made here when not given); its
    views' logits are its class-score maps averaged over space (VGG's sum-pooling)."""
    def logits(v: torch.Tensor) -> torch.Tensor:
        return split_output(model(v))[0]

    m = parse_method(method)
    if m.kind in ("none", "centre"):
        return [logits(centre_crop(x, crop))]
    if m.kind == "flip":
        c = centre_crop(x, crop)
        return [logits(c), logits(c.flip(-1))]
    if m.kind == "ten-crop":
        crops = ten_crops(x, crop)
        b = x.shape[0]
        return list(logits(crops.flatten(0, 1)).view(10, b, -1))  # one pass over all ten
    if m.kind == "multiscale":
        whole = pools_globally(model)
        return [logits(v) for v in multiscale_views(x, m.scales, None if whole else crop)]
    net = dense or dense_model(model)
    out = []
    for v in multiscale_views(x, m.scales) if m.scales else [x]:
        _fits(v, *_side(crop))
        out.append(split_output(net(v))[0].float().mean((2, 3)))
    return out


__all__ = ["DenseNet", "TestMethod", "centre_crop", "dense_model", "full_size",
           "multiscale_views", "parse_method", "pools_globally", "resize_smallest", "ten_crops",
           "view_logits"]
