"""What a caller of `fit` can hear of the run while it trains: plain hooks, no magic.

A callback is any object with some of these methods; the run calls each one it has, in the
order the callbacks were given, on every process of a DDP run:

- `on_step(event: StepEvent)` after every optimiser step;
- `on_epoch_end(row: dict)` after an epoch is evaluated and logged, with the epoch's row of
  the history (`epoch`, `step`, `lr`, `train_loss`, `train_top1`, `val_loss`, `val_top1`,
  `val_top5`, `epoch_s`, `images_per_s`), as metrics.csv holds it.

The per-epoch history also comes back whole in the summary `fit` returns (`history`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class StepEvent:
    epoch: int  # the epoch the step is in, from 0
    batch: int  # batches taken in this epoch, the step's own included (from 1)
    batches: int  # batches in an epoch
    step: int  # optimiser steps taken in the run
    loss: torch.Tensor  # this step's loss, detached; float() of it waits for a GPU
    lr: float  # the first parameter group's rate after the step

    @property
    def epoch_fraction(self) -> float:
        """Epochs done, counting this one's part: 1.5 is halfway through the second."""
        return self.epoch + self.batch / max(self.batches, 1)


def call(callbacks: Sequence[Any], hook: str, *args: Any) -> None:
    """Call `hook` on every callback that has it."""
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(*args)


__all__ = ["StepEvent", "call"]
