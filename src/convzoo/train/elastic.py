"""A run that continues at another number of processes than it saved at (torchrun's
`--nnodes MIN:MAX` after a node is lost or joins).

The rule: the batch per process (`batch_size`) stays what the run's settings say, so the
global batch, and with it the number of steps in an epoch, follows the number of processes.
The learning rate is the recipe's, unscaled, at the same point of training counted in epochs:
the schedule is rebuilt for the new steps per epoch and advanced to where the run stood
(reduce-on-plateau, stepped per epoch, keeps its own state and rate). The loader continues
after the images the epoch has used: they are a prefix of the epoch's order whatever the
number of processes (see `data.loader.shard`), so the new position is that prefix in the new
global batches, rounded down (a part of one global batch may be seen twice in that epoch).

Every change is said in one line and kept in the checkpoints' `world_sizes`, which
summary.json repeats: [{"world_size", "from_step", "epoch"}], one entry per size run at.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from .schedules import Schedule


def world_history(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The sizes a checkpoint's run ran at; runs saved before this was recorded ran at the
    number of random streams they kept (one per process)."""
    got = meta.get("world_sizes")
    if isinstance(got, list) and got:
        return [dict(e) for e in got if isinstance(e, dict)]
    return [{"world_size": saved_world_size(meta, None), "from_step": 0, "epoch": 0}]


def saved_world_size(meta: dict[str, Any], extra: dict[str, Any] | None) -> int:
    got = meta.get("world_size")
    if isinstance(got, int) and got >= 1:
        return got
    rngs = (extra or {}).get("rank_rng")
    return len(rngs) if isinstance(rngs, list) and rngs else 1


def convert_position(batch: int, old_world: int, new_world: int) -> tuple[int, bool]:
    """(batches per process taken at `new_world`, whether it was rounded down) for an epoch
    that had taken `batch` batches per process at `old_world`."""
    per_process_batches = batch * old_world
    return per_process_batches // new_world, per_process_batches % new_world != 0


def advance_schedule(schedule: Schedule, steps: int) -> list[float]:
    """Step a freshly built schedule `steps` times (no optimiser steps between); return the
    learning rate of every parameter group there."""
    with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": on purpose
        warnings.simplefilter("ignore")
        for _ in range(steps):
            schedule.after_step()
    return [float(g["lr"]) for g in schedule.optimizer.param_groups]


def restore_at_new_world(schedule: Schedule, optimizer: torch.optim.Optimizer,
                         training_state: dict[str, Any], steps_done: int) -> None:
    """Load the optimiser's state (momentum, moments) under a schedule rebuilt for the new
    steps per epoch and advanced `steps_done` of them (see the module docstring)."""
    lrs = advance_schedule(schedule, steps_done)
    optimizer.load_state_dict(training_state["optimizer"])
    if schedule.per_epoch:  # reduce-on-plateau: its reductions are in the saved rate
        main = training_state["schedule"].get("main")
        if main is not None and schedule.main is not None:
            schedule.main.load_state_dict(main)
        return
    for group, lr in zip(optimizer.param_groups, lrs):
        group["lr"] = lr
