"""A source model: a training run (its directory or a checkpoint), or a model name with weights.

Every command that starts from an existing model (predict, eval, finetune, features, viz, the
transfer experiment) reads its SOURCE argument here, so each accepts the same three kinds and
refuses the same mistakes. A source brings what its weights were trained with: the class
names, the input size and normalisation, and the preprocessing of an image file, so new data
is adapted to what the weights expect (grey images replicated, small images resized), not the
other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.preprocess import Preprocess
from ..errors import UserInputError
from .checkpoint import Checkpoint, load_checkpoint, model_from_checkpoint
from .meta import RunMeta

Size = tuple[int, int, int]


@dataclass
class Source:
    """A loaded source model (in eval mode) and what its weights were trained with."""

    model: nn.Module
    description: str
    # uint8 C x H x W image of any size -> the float tensor the model takes; `.channels` says
    # how many channels to read an image file with
    preprocess: Callable[[torch.Tensor], torch.Tensor]
    class_names: list[str] | None = None
    input_size: Size | None = None  # None: the model's default input
    mean: tuple[float, ...] | None = None  # None: the new data's own statistics
    std: tuple[float, ...] | None = None
    checkpoint: Checkpoint | None = None  # set for a training run
    notes: list[str] = field(default_factory=list)

    @property
    def meta(self) -> dict[str, Any]:
        """The run's checkpoint.json as it is; empty for a model name."""
        return self.checkpoint.meta if self.checkpoint is not None else {}

    @property
    def info(self) -> RunMeta:
        """The run's metadata, typed (model, data, config, sizes); empty for a model name."""
        return self.checkpoint.info if self.checkpoint is not None else RunMeta()


class RunPreprocess:
    """uint8 C x H x W of any size -> the float tensor the run's model was trained on.

    An image is brought to the size the training images were stored at (shorter side resized,
    centre crop), then through the same adaptation and normalisation the loader applied in
    training (e.g. 28x28 padded to 32x32 for LeNet-5), so a file is seen as a training image
    was."""

    def __init__(self, stored: Size, input_size: Size, mean: list[float],
                 std: list[float]) -> None:
        from ..data.batches import Pipeline

        c, h, w = stored
        self.channels = c
        self.stored = stored
        self.to_stored = Preprocess(resize=min(h, w), crop=min(h, w), mean=(0.0,) * c,
                                    std=(1.0,) * c, channels=c)
        self.pipeline = Pipeline(stored, input_size, mean, std, torch.device("cpu"))

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        x = self.to_stored(img)  # 0..1
        _, h, w = self.stored
        if x.shape[-2:] != (h, w):
            x = torch.nn.functional.interpolate(x[None], size=(h, w), mode="bilinear")[0]
        x = (x * 255).round().clamp(0, 255).to(torch.uint8)
        return self.pipeline(x[None])[0]


def checkpoint_line(ckpt: Checkpoint, prefer: str = "best") -> str:
    """Which checkpoint of a run a tool took, and why: `best` (the epoch and what chose it)
    or `last` (asked for, or the run kept no best/)."""
    meta = ckpt.meta
    name = ckpt.path.name
    total = (meta.get("config") or {}).get("epochs")
    at = f"epoch {meta.get('epoch')}" + (f" of {total}" if total else "")
    sel = meta.get("selection")
    if name.startswith("best"):
        if isinstance(sel, dict) and sel.get("split") == "val":
            top1 = meta.get("best_top1")
            score = f" {top1:.4f}" if isinstance(top1, int | float) else ""
            why = f"the best validation top-1{score} ({sel.get('images')} images)"
        else:
            why = "chosen on the test split by an older convzoo: its test score is optimistic"
        return f"{ckpt.path} (best/: {at}, {why})"
    if prefer == "best":
        if isinstance(sel, dict) and sel.get("split") is None:
            reason = str(sel.get("how", "")).split(": ")[0]
        elif isinstance(sel, dict):
            reason = "no epoch has been scored on its validation split yet"
        else:
            reason = "no best/ in the run"
        return f"{ckpt.path} (last/: {at}; the run has no best/: {reason})"
    return f"{ckpt.path} (last/: {at})"


def default_preprocess(model: nn.Module) -> Preprocess:
    """For weights that declare none: ImageNet statistics, a 0.875 centre crop at the input size."""
    c, h, _ = getattr(model, "default_input_size", (3, 224, 224))
    return Preprocess(resize=round(h / 0.875), crop=h, channels=c)


def is_run(source: str | Path) -> bool:
    """A path that exists is read as a run (a directory or a checkpoint), never as a name."""
    return Path(source).exists()


def looks_like_path(source: str) -> bool:
    """Whether `source` can only be meant as a path: model names have no slashes or dots."""
    return any(c in str(source) for c in "/\\.~")


def load_source(source: str, weights: str | None = None, *, need_weights: bool = False,
                runs_only: bool = False, prefer: str = "best", ema: bool = True,
                device: str | torch.device = "cpu") -> Source:
    """The model SOURCE names, in eval mode on `device`.

    `need_weights`: a model name without `weights` is refused (random weights predict nothing)
    instead of built with random weights. `runs_only`: only a run or checkpoint will do.
    `prefer` ('best' or 'last') picks a run directory's checkpoint; `ema` its EMA weights
    where it kept them."""
    if not is_run(source) and looks_like_path(source):
        raise UserInputError(f"{source} does not exist: give a run directory, a checkpoint or "
                             "a model name (`convzoo list`)")
    if runs_only or is_run(source):
        if weights is not None:
            raise UserInputError(f"{source} is a training run and brings its own weights; "
                                 "leave out --weights")
        return _from_run(source, prefer, ema, device)
    return _from_name(source, weights, need_weights, device)


def _from_run(source: str, prefer: str, ema: bool, device: str | torch.device) -> Source:
    ckpt = load_checkpoint(source, prefer=prefer, need=("model", "ema"))  # scoring only
    model = model_from_checkpoint(ckpt, ema=ema, device=device)
    info = ckpt.info
    input_size = info.input_size or tuple(model.default_input_size)
    stored = info.image_size or input_size
    prep = RunPreprocess(stored, input_size,  # type: ignore[arg-type]
                         list(info.mean or [0.5] * stored[0]),
                         list(info.std or [0.5] * stored[0]))
    return Source(
        model, f"{info.model} trained on {info.data}, {checkpoint_line(ckpt, prefer)}", prep,
        class_names=ckpt.class_names, input_size=info.input_size, mean=info.mean,
        std=info.std, checkpoint=ckpt)


def _from_name(name: str, weights: str | None, need_weights: bool,
               device: str | torch.device) -> Source:
    from ..registry import create_model, get_entry

    get_entry(name)  # an unknown name fails here, with suggestions
    if weights is None and need_weights:
        raise UserInputError(f"{name} needs --weights (a weights file, or a named source such "
                             "as 'imagenet'): random weights predict nothing")
    # the registry knows the model's named weights; load_weights reads any other as a file
    model = create_model(name, weights=weights)
    if weights is None:
        return Source(model.to(device).eval(), f"{name} with random weights (no --weights given)",
                      default_preprocess(model),
                      notes=["no pretrained weights: this is training from scratch"])
    report = getattr(model, "weights_report", None)
    declared = getattr(model, "preprocess", None)  # what the weights were trained with
    size = (declared.channels, declared.crop, declared.crop) if declared is not None else None
    return Source(model.to(device).eval(), f"{name} with weights {weights}",
                  declared or default_preprocess(model),
                  class_names=getattr(model, "class_names", None), input_size=size,
                  mean=tuple(declared.mean) if declared is not None else None,
                  std=tuple(declared.std) if declared is not None else None,
                  notes=[str(report)] if report is not None else [])


def new_head(model: nn.Module, classes: list[str], old: list[str] | None) -> str | None:
    """Give the model a head for `classes` unless it already has exactly those."""
    n_old = getattr(model, "num_classes", None)
    if n_old == len(classes) and (old is None or list(old) == list(classes)):
        return None
    model.reset_head(len(classes))
    args = dict(getattr(model, "model_args", {}))
    args["num_classes"] = len(classes)
    model.model_args = args
    model.class_names = list(classes)
    return f"new {len(classes)}-class head (the source had {n_old} classes)"
