"""Fine-tuning preparation, one way for every caller (`convzoo finetune`, the transfer and
transfer-depth experiments): a source model gets a head for the new classes, and the run's
config takes the model's identity, the input its weights expect and the fine-tuning mode.

Choices:
- The input size is the weights' own (their channels always: an RGB network keeps three
  channels and grey images are replicated), unless the caller asks for another side.
- The normalisation is the one the weights were trained with when the source records one;
  otherwise the new data's own statistics (the run's default).
- A new head's weights come from the global generator; with `seed` they are seeded here, so a
  result does not depend on what ran before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..sizes import fill_channels
from .config import TrainConfig, replace

Size = tuple[int, int, int]


@dataclass
class FineTune:
    """A source model ready to fine-tune and the config to train it with."""

    model: nn.Module
    config: TrainConfig
    notes: list[str] = field(default_factory=list)  # what was changed, for the log


def input_size_for(src: Any, asked: Any = None) -> Size:
    """What a source model is fed: `asked` (C x H x W, or H x W with C 0) or the weights' own
    input size, always with the weights' channels."""
    own = tuple(src.input_size or src.model.default_input_size)
    return fill_channels(asked or own, own[0])  # type: ignore[return-value]


def prepare_finetune(src: Any, classes: list[str], cfg: TrainConfig, *, mode: str,
                     train_last: int = 1, lr_decay: float = 1.0, weights: str | None = None,
                     input_size: Any = None, seed: int | None = None,
                     model: nn.Module | None = None) -> FineTune:
    """`src` (a loaded `runs.source.Source`) ready to fine-tune on data with `classes`.

    `mode`: linear (only the new head trains), partial (it and the last `train_last` groups,
    each earlier group's rate `lr_decay` times the next one's) or full. `model`: a copy of
    `src.model` to prepare instead of the source's own (an experiment fine-tunes several)."""
    from ..runs.source import new_head

    model = src.model if model is None else model
    if seed is not None:
        torch.manual_seed(seed)
    notes = []
    head = new_head(model, list(classes), src.class_names)
    if head:
        notes.append(head)
    size = input_size_for(src, input_size or cfg.input_size)
    changes: dict[str, Any] = {
        "model": getattr(model, "model_name", cfg.model),
        "model_args": dict(getattr(model, "model_args", {})), "finetune": mode,
        "train_last": max(1, train_last), "lr_decay": lr_decay, "input_size": list(size),
    }
    if weights is not None:
        changes["weights"] = weights
    if src.mean is not None and cfg.mean is None:
        changes["mean"], changes["std"] = list(src.mean), list(src.std)
        notes.append("input: normalised with the statistics the weights were trained with")
    return FineTune(model, replace(cfg, changes, "finetune"), notes)


__all__ = ["FineTune", "input_size_for", "prepare_finetune"]
