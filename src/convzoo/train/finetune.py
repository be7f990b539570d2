"""Where a fine-tuning run starts: a source model with its weights, and a new head.

A source is a convzoo run directory or checkpoint, or a registered model name with weights
(a torchvision or timm state_dict file, or a named source such as 'imagenet'). It brings the
input size and normalisation its weights were trained with, so new data is adapted to what
the weights expect (grey images replicated, small images resized), not the other way round.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from ..errors import UserInputError
from . import transfer

log = logging.getLogger("convzoo.train")


@dataclass
class Source:
    model: nn.Module
    description: str
    input_size: tuple[int, int, int] | None = None  # None: the model's default input
    mean: tuple[float, ...] | None = None  # None: the new data's own statistics
    std: tuple[float, ...] | None = None
    class_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)


def load_source(source: str, weights: str | None = None) -> Source:
    from ..registry import create_model, get_entry
    from .checkpoint import load_checkpoint, model_from_checkpoint
    from .inference import is_run

    if is_run(source) or Path(source).exists():
        if weights is not None:
            raise UserInputError(f"{source} is a training run and brings its own weights; "
                                 "leave out --weights")
        ckpt = load_checkpoint(source)
        model = model_from_checkpoint(ckpt, ema=True)
        meta = ckpt.meta
        return Source(model, f"{ckpt.path} ({meta.get('model')} trained on {meta.get('data')})",
                      tuple(meta["input_size"]) if meta.get("input_size") else None,
                      tuple(meta["mean"]) if meta.get("mean") else None,
                      tuple(meta["std"]) if meta.get("std") else None,
                      ckpt.class_names)
    get_entry(source)
    model = create_model(source)
    if weights is None:
        return Source(model, f"{source} with random weights (no --weights given)",
                      notes=["no pretrained weights: this is training from scratch"])
    from ..weights import load_weights

    report = load_weights(model, weights)
    pre = getattr(model, "preprocess", None)
    size = (pre.channels, pre.crop, pre.crop) if pre is not None else None
    return Source(model, f"{source} with weights {weights}", size,
                  tuple(pre.mean) if pre is not None else None,
                  tuple(pre.std) if pre is not None else None,
                  getattr(model, "class_names", None), [str(report)])


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


def optimiser_groups(model: nn.Module, mode: str, lr: float, train_last: int,
                     lr_decay: float) -> tuple[list[transfer.GroupPlan], list[dict]]:
    plans = transfer.plan(model, mode, lr, train_last, lr_decay)
    groups = transfer.apply(plans)
    if not groups:
        name = getattr(model, "model_name", type(model).__name__)
        raise UserInputError(f"nothing to train in {name} with --mode {mode}: its last layer "
                             "has no trainable parameters (LeNet-5's RBF output is fixed); "
                             "use --mode partial or a model with a linear output")
    return plans, groups
