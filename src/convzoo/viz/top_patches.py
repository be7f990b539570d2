"""What a filter responds to (Zeiler and Fergus 2013, "Visualizing and Understanding
Convolutional Networks", figure 2): for chosen filters of a layer, the input patches where the
filter's activation is largest over a data set, drawn as one grid (a row per filter, its top-k
patches left to right, strongest first).

The patch of an output position is its receptive field in the input, from
`analysis.receptive` (the one implementation of receptive fields in convzoo): position (i, j)
looks at the r x r square centred on input pixel (start + i * jump, start + j * jump), where r,
jump and start are followed through every convolution, pooling, explicit pad, branch and
residual addition of the real forward pass (`convzoo summary` prints the same numbers).

Choices:
- Each filter's top-k come from distinct images (its strongest position in each image), as in
  the paper's figure; `distinct_images=False` allows several places in one image.
- Patches are cut from the images the network saw (normalised, at its input size) and drawn
  un-normalised; where a field reaches past the border, the patch is grey there.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserInputError
from ..layers.lookup import find_layer as find_module
from .grid import save_grid

MAX_TILE = 96  # a larger receptive field is shrunk to this many pixels per tile
MIN_TILE = 48  # a smaller one is enlarged (nearest neighbour) to at least this


@dataclass(frozen=True)
class Field:
    """The receptive field of a layer's positions: size r, jump (effective stride) and start
    (the input pixel, in index coordinates, at the centre of position 0), per axis (H, W)."""

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]

    def box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right), bottom/right exclusive, of position (i, j)'s patch in the
        input; may reach outside the image."""
        top = round(self.start[0] + i * self.jump[0] - (self.size[0] - 1) / 2)
        left = round(self.start[1] + j * self.jump[1] - (self.size[1] - 1) / 2)
        return top, left, top + self.size[0], left + self.size[1]


def receptive_field(model: nn.Module, layer: str | nn.Module,
                    input_size: tuple[int, int, int]) -> Field:
    """The receptive field of `layer`'s output positions at `input_size` (C, H, W), from
    `analysis.receptive` (one meta forward pass that follows every operation, branches and
    shortcuts included)."""
    from ..analysis.receptive import trace_fields

    target = find_module(model, layer) if isinstance(layer, str) else layer
    qual = next((n for n, m in model.named_modules() if m is target and n), None)
    if qual is None:
        raise UserInputError(f"layer {layer!r} is not a module of this model; choose one that "
                             "`convzoo summary` lists")
    rows = {r.name: r for r in trace_fields(model, tuple(input_size)).rows}
    row = rows.get(qual)
    if row is None:
        raise UserInputError(f"layer {layer!r} is not used when this model runs, or gives no "
                             "map of positions; choose a convolutional layer")
    if len(row.output_shape) != 4:
        raise UserInputError(f"layer {layer!r} gives vectors, not maps; choose a "
                             "convolutional layer")
    return Field(tuple(row.rf), tuple(row.jump), tuple(float(v) for v in row.start))


# ---------------------------------------------------------------- the scan


@dataclass
class TopPatches:
    layer: str
    field: Field
    filters: list[int]
    # per filter (row) and rank (column): activation value, image index in the scan's order,
    # position (row, col) in the layer's output
    values: torch.Tensor  # F x k
    images: torch.Tensor  # F x k (long)
    positions: torch.Tensor  # F x k x 2 (long)
    patches: torch.Tensor  # F x k x C x r x r, in the network's input units; NaN outside
    scanned: int  # images scanned

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "receptive_field": list(self.field.size),
                "jump": list(self.field.jump), "start": list(self.field.start),
                "images_scanned": self.scanned,
                "filters": [{"filter": f, "top": [
                    {"value": float(v), "image": int(i), "position": [int(a), int(b)]}
                    for v, i, (a, b) in zip(self.values[r], self.images[r],
                                            self.positions[r].tolist())]}
                    for r, f in enumerate(self.filters)]}


def crop_patch(image: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    """The C x (bottom-top) x (right-left) patch of a C x H x W image; NaN outside the image."""
    top, left, bottom, right = box
    c, h, w = image.shape
    out = torch.full((c, bottom - top, right - left), float("nan"), dtype=image.dtype,
                     device=image.device)
    t, lft, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if t < b and lft < r:
        out[:, t - top:b - top, lft - left:r - left] = image[:, t:b, lft:r]
    return out


def _choose(filters: int | Sequence[int], channels: int) -> list[int]:
    chosen = list(range(min(filters, channels))) if isinstance(filters, int) else list(filters)
    bad = [f for f in chosen if not 0 <= f < channels]
    if not chosen or bad:
        raise UserInputError(f"the layer has {channels} filters (0..{channels - 1}); "
                             f"cannot show {bad[0] if bad else 'none'}")
    return chosen


def _advance(progress: Any, done: int, stats: str) -> None:
    if progress is not None:
        progress.advance(done, stats)  # train.progress.Progress, or anything with advance()


@torch.no_grad()
def top_patches(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                layer: str, *, filters: int | Sequence[int] = 16, top: int = 9,
                distinct_images: bool = True, progress: Any = None,
                field: Field | None = None) -> TopPatches:
    """Scan `batches` (normalised images at the model's input size) and keep, for each chosen
    filter of `layer` (the first N, or a list of indices), its `top` strongest activations
    and the receptive-field patches they come from."""
    target = find_module(model, layer)
    captured: list[torch.Tensor] = []

    def hook(_m: nn.Module, _i: tuple, out: Any) -> None:
        captured.append(out if isinstance(out, torch.Tensor) else out[0])

    was_training = model.training
    model.eval()
    total = len(batches) if hasattr(batches, "__len__") else 0  # type: ignore[arg-type]
    if progress is not None:
        progress.start(f"scanning {layer}", total)
    handle = target.register_forward_hook(hook)
    best_v = best_i = best_p = patches = None
    chosen: list[int] = []
    seen = 0
    t0 = time.perf_counter()
    try:
        for b, (x, _y) in enumerate(batches):
            captured.clear()
            model(x)
            if not captured:
                raise UserInputError(f"layer {layer!r} is not used when this model runs")
            act = captured[0].float()
            if act.dim() != 4:
                raise UserInputError(f"layer {layer!r} gives vectors, not maps; choose a "
                                     "convolutional layer")
            if field is None:
                field = receptive_field(model, target, tuple(x.shape[1:]))
            if not chosen:
                chosen = _choose(filters, act.shape[1])
            n, _, h, w = act.shape
            a = act[:, chosen].flatten(2)  # n x F x (h*w)
            if distinct_images:
                v, pos = a.max(2)  # the strongest place in each image: n x F
                img = torch.arange(seen, seen + n, device=a.device)[:, None].expand_as(v)
            else:
                v = a.permute(0, 2, 1).reshape(n * h * w, -1)  # (n*h*w) x F
                pos = torch.arange(h * w, device=a.device).repeat(n)[:, None].expand_as(v)
                img = torch.arange(seen, seen + n, device=a.device).repeat_interleave(h * w)
                img = img[:, None].expand_as(v)
            cand_v = v if best_v is None else torch.cat([best_v, v])
            cand_i = img if best_i is None else torch.cat([best_i, img])
            cand_p = pos if best_p is None else torch.cat([best_p, pos])
            kk = min(top, cand_v.shape[0])
            sel = cand_v.topk(kk, dim=0).indices  # kk x F, into the candidates
            new_patches = []
            for r in range(len(chosen)):
                row = []
                for q in range(kk):
                    c = int(sel[q, r])
                    if best_v is not None and c < best_v.shape[0]:
                        row.append(patches[c][r])  # type: ignore[index]
                    else:
                        p = int(cand_p[c, r])
                        i_local = int(cand_i[c, r]) - seen
                        row.append(crop_patch(x[i_local].float(), field.box(p // w, p % w)))
                new_patches.append(torch.stack(row))
            patches = torch.stack(new_patches, 1)  # kk x F x C x r x r
            best_v, best_i, best_p = (t.gather(0, sel) for t in (cand_v, cand_i, cand_p))
            seen += n
            _advance(progress, b + 1,
                     f"{seen:,} images  {seen / max(time.perf_counter() - t0, 1e-9):,.0f} img/s")
    finally:
        handle.remove()
        model.train(was_training)
        if progress is not None:
            progress.stop()
    if best_v is None or field is None:
        raise UserInputError("no images to scan")
    w_out = captured[0].shape[-1]
    pos2 = torch.stack([best_p // w_out, best_p % w_out], -1)
    return TopPatches(layer, field, chosen, best_v.T.cpu(), best_i.T.cpu(),
                      pos2.permute(1, 0, 2).cpu(), patches.transpose(0, 1).cpu(), seen)


# ---------------------------------------------------------------- the picture


def patch_tiles(result: TopPatches, mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None) -> torch.Tensor:
    """(F*k) x C x r x r tiles in 0..1: un-normalised with mean/std (else each patch scaled to
    0..1 on its own); grey outside the image."""
    p = result.patches.flatten(0, 1).float()
    c = p.shape[1]
    outside = p.isnan()
    if mean is not None and std is not None:
        m = torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
        s = torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1)
        if m.shape[1] != c:
            m, s = m.mean().view(1, 1, 1, 1), s.mean().view(1, 1, 1, 1)
        p = (p * s + m).clamp(0, 1)
    else:
        filled = torch.where(outside, torch.zeros_like(p), p)
        lo = torch.where(outside, torch.full_like(p, float("inf")), p).flatten(1).min(1).values
        hi = filled.masked_fill(outside, float("-inf")).flatten(1).max(1).values
        lo, hi = lo.view(-1, 1, 1, 1), hi.view(-1, 1, 1, 1)
        p = ((p - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
    return torch.where(outside, torch.full_like(p, 0.5), p)


def draw_top_patches(result: TopPatches, out: str | Path, mean: Sequence[float] | None = None,
                     std: Sequence[float] | None = None) -> tuple[int, int]:
    """One PNG: a row per filter, its patches strongest first. Returns (width, height)."""
    tiles = patch_tiles(result, mean, std)
    r = max(tiles.shape[-2:])
    if r > MAX_TILE:
        tiles = torch.nn.functional.interpolate(tiles, size=(MAX_TILE, MAX_TILE),
                                                mode="bilinear", antialias=True)
    scale = max(1, -(-MIN_TILE // r))
    return save_grid(tiles, out, scale=scale, cols=result.patches.shape[1])


def scan_split(source: Any, split: Any, layer: str, *, filters: int | Sequence[int] = 16,
               top: int = 9, batch_size: int = 64, device: torch.device | str = "cpu",
               progress: Any = None) -> TopPatches:
    """`top_patches` over a data split, the images brought to what `source` (a loaded
    `train.source.Source`) expects: its input size and normalisation."""
    from ..data.loader import make_loader

    model = source.model.to(device).eval()
    size = tuple(source.input_size or model.default_input_size)
    mean = source.mean if source.mean is not None else (0.5,) * size[0]
    std = source.std if source.std is not None else (0.5,) * size[0]
    batches = make_loader(split, batch_size=batch_size, train=False, device=device,
                          input_size=size, mean=mean, std=std, augment=None, seed=0, epoch=0)
    return top_patches(model, batches, layer, filters=filters, top=top, progress=progress)


__all__ = ["Field", "TopPatches", "crop_patch", "draw_top_patches", "patch_tiles",
           "receptive_field", "scan_split", "top_patches"]
