"""The training entry point, `fit`, and the loop's public pieces.

Where each part lives:
- `epoch`: one epoch of optimiser steps (`train_one_epoch`, `loss_fn`, the NaN stop, compile
  warm-up); `evaluate`: scoring a split (`evaluate`, `EvalResult`); `device`: the device,
  bf16 autocast and channels_last (on a GPU; fp32 on the CPU); `run`: the `Run` object whose
  steps `fit` calls in order.
- Augment presets are `data.augment`'s, hold-out splits `data.split`'s; freezing and
  per-group learning rates for fine-tuning are `freeze`'s.

Choices:
- Checkpoints are written after every epoch and inside one every `save_every` steps and/or
  `save_minutes` minutes (default 10), never after a non-finite loss, so after a NaN stop the
  last one on disk is a good one, and the message names the bad step. A run resumed from any
  of them continues exactly (see `run`). SIGTERM and SIGINT stop the run after the current
  step with `last` saved (`signals`); the run directory is locked while a run writes in it.
- A model the caller passes is the one that trains; resuming into it checks its architecture
  against the checkpoint's first. Models from `create_model` carry their registry name and
  arguments, which the checkpoints record.
- Under torchrun (see `distributed`) the model is wrapped in DDP; every process evaluates its
  share of the split with the unwrapped model and rank 0's BatchNorm statistics, and the
  counts are summed, so all processes agree on the result (and on a plateau schedule's step).
  The NaN check is collective, so every process stops at the same step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import UserInputError
from ..evaluation.score import EvalResult, evaluate
from ..runtime import distributed as dd
from ..runtime.device import autocast, device_name, resolve_amp, resolve_device
from ..runtime.progress import Progress
from ..runtime.signals import StopOnSignal, TrainingInterrupted
from .config import TrainConfig
from .epoch import RunState, TrainingDiverged, loss_fn, train_one_epoch
from .run import Run, build_model, loader, model_input_size

__all__ = [
    "EvalResult", "Run", "RunState", "TrainingDiverged", "autocast", "build_model",
    "device_name", "evaluate", "fit", "loader", "loss_fn", "model_input_size", "resolve_amp",
    "resolve_device", "train_one_epoch", "TrainingInterrupted",
]


def fit(cfg: TrainConfig | None = None, *, resume: str | Path | None = None,
        changes: Mapping[str, Any] | None = None, data: Any = None,
        progress: Progress | None = None, model: nn.Module | None = None,
        extra_meta: dict[str, Any] | None = None,
        callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Train `cfg.model` on `cfg.data`; write checkpoints, metrics and summary.json; return it.

    Resuming: `fit(resume=DIR)` continues the run in DIR with its own settings, rebuilt from
    its checkpoint (`train.resume`), `changes` applied (the settings a resumed run may change:
    epochs, device, threads, ...). Given a `cfg` as well, that config is checked against the
    run's instead.

    `model`, a model already built (fine-tuning: source weights loaded, head replaced), is used
    instead of building `cfg.model`, also when resuming (after checking that it has the
    checkpoint's architecture); with `cfg.finetune` set, only the groups the mode names train,
    at their own rates. `extra_meta` goes into checkpoint.json and summary.json. `callbacks`
    hear of every step and epoch (see `callbacks`); the summary returned holds the per-epoch
    `history`.

    A signal (SIGTERM, Ctrl-C) ends the run after its current step with `last` saved and
    summary.json saying "interrupted": `TrainingInterrupted` is raised (exit code 128 +
    signal on the command line). Resuming a run that has finished writes nothing and returns
    its summary with `already_finished` set.

    Under torchrun (WORLD_SIZE > 1) every process calls this: the model trains with DDP, each
    process on its share of every epoch (the batch size is per process), evaluation is sharded
    and summed, and only rank 0 writes files and prints."""
    if cfg is None:
        if resume is None:
            raise UserInputError("fit needs a TrainConfig, or resume=RUN_DIR to continue a run")
        from .resume import resumed_config

        r = resumed_config(resume, changes)
        cfg = r.config
        extra_meta = {"config_sources": r.sources, **(extra_meta or {})}
    elif changes:
        raise UserInputError("give the changes in the TrainConfig itself, or resume=RUN_DIR "
                             "with changes and no TrainConfig")
    ddp = None
    if dd.launched():
        cfg.validate()
        ddp = dd.init_from_env(resolve_device(cfg.device))
    run = None
    try:
        with StopOnSignal() as stop:
            run = Run(cfg, ddp, resume=resume, data=data, progress=progress, model=model,
                      extra_meta=extra_meta, stop=stop, callbacks=callbacks)
            run.setup()
            run.restore()
            if run.finished():
                return run.previous_summary()
            run.start()
            run.run_epochs()
            return run.finish()
    finally:
        if run is not None:
            run.close()
        dd.cleanup(ddp)
