"""The training entry point, `fit`, and the loop's public pieces.

Where each part lives:
- `epoch`: one epoch of optimiser steps (`train_one_epoch`, `loss_fn`, the NaN stop, compile
  warm-up); `evaluate`: scoring a split (`evaluate`, `EvalResult`); `device`: the device,
  bf16 autocast and channels_last (on a GPU; fp32 on the CPU); `run`: the `Run` object whose
  steps `fit` calls in order.
- Augment presets are `data.augment`'s, hold-out splits `data.split`'s; freezing and
  per-group learning rates for fine-tuning are `freeze`'s.

Choices:
- Checkpoints are written only after a whole epoch, so after a NaN stop the last one on disk
  is the last good one, and the message names the bad step.
- A model the caller passes is the one that trains; resuming into it checks its architecture
  against the checkpoint's first. Models from `create_model` carry their registry name and
  arguments, which the checkpoints record.
- Under torchrun (see `distributed`) the model is wrapped in DDP; every process evaluates its
  share of the split with the unwrapped model and rank 0's BatchNorm statistics, and the
  counts are summed, so all processes agree on the result (and on a plateau schedule's step).
  The NaN check is collective, so every process stops at the same step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from . import distributed as dd
from .config import TrainConfig
from .device import autocast, device_name, resolve_amp, resolve_device
from .epoch import RunState, TrainingDiverged, loss_fn, train_one_epoch
from .evaluate import EvalResult, evaluate
from .progress import Progress
from .run import Run, build_model, loader, model_input_size

__all__ = [
    "EvalResult", "Run", "RunState", "TrainingDiverged", "autocast", "build_model",
    "device_name", "evaluate", "fit", "loader", "loss_fn", "model_input_size", "resolve_amp",
    "resolve_device", "train_one_epoch",
]


def fit(cfg: TrainConfig, *, resume: str | Path | None = None, data: Any = None,
        progress: Progress | None = None, model: nn.Module | None = None,
        extra_meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train `cfg.model` on `cfg.data`; write checkpoints, metrics and summary.json; return it.

    `model`, a model already built (fine-tuning: source weights loaded, head replaced), is used
    instead of building `cfg.model`, also when resuming (after checking that it has the
    checkpoint's architecture); with `cfg.finetune` set, only the groups the mode names train,
    at their own rates. `extra_meta` goes into checkpoint.json and summary.json.

    Under torchrun (WORLD_SIZE > 1) every process calls this: the model trains with DDP, each
    process on its share of every epoch (the batch size is per process), evaluation is sharded
    and summed, and only rank 0 writes files and prints."""
    ddp = None
    if dd.launched():
        cfg.validate()
        ddp = dd.init_from_env(resolve_device(cfg.device))
    try:
        run = Run(cfg, ddp, resume=resume, data=data, progress=progress, model=model,
                  extra_meta=extra_meta)
        run.setup()
        run.restore()
        run.start()
        run.run_epochs()
        return run.finish()
    finally:
        dd.cleanup(ddp)
