"""One epoch of training: the loss, the optimiser steps, the NaN stop, and compile warm-up.

- The loss is checked for NaN/inf without a host sync on every step: the first bad step is
  recorded on the device and looked at every `log_every` steps (on the CPU too, where every
  check is Python work and, under DDP, a collective); the check is collective under DDP, so
  every process stops at the same step.
- The loss is computed in fp32, whatever autocast computed the logits in.
- A model may return an object with `.logits` and `.aux_logits` (GoogLeNet in training mode);
  each auxiliary loss is added with weight `aux_weight` (0.3, the paper's).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConvzooError
from ..models.base import split_output
from ..runtime import distributed as dd
from ..runtime.device import autocast
from ..runtime.progress import Progress
from .config import TrainConfig
from .schedules import Schedule


class TrainingDiverged(ConvzooError):
    """The loss became NaN or infinite; the run stopped (exit code 1)."""


@dataclass
class RunState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps taken
    best_top1: float = -1.0
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def loss_fn(out: Any, y: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of the main logits plus aux_weight x that of each auxiliary classifier."""
    logits, aux = split_output(out)
    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
    for a in aux:
        loss = loss + cfg.aux_weight * F.cross_entropy(a.float(), y,
                                                       label_smoothing=cfg.label_smoothing)
    return loss, logits


@dataclass
class EpochTally:
    """What one epoch has summed so far (loss, correct answers, images, the first non-finite
    step) and the per-step losses not yet written out. A mid-epoch checkpoint saves it, so a
    resumed epoch reports the figures the uninterrupted one would."""

    loss_sum: torch.Tensor
    correct: torch.Tensor
    first_bad: torch.Tensor
    seen: int = 0
    losses: list[torch.Tensor] = field(default_factory=list)  # one 0-dim tensor per step

    @classmethod
    def new(cls, device: torch.device) -> EpochTally:
        return cls(torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long),
                   torch.full((), -1, device=device, dtype=torch.long))

    def state(self) -> dict[str, Any]:
        """The sums as plain numbers (for a checkpoint; one host sync)."""
        return {"loss_sum": float(self.loss_sum), "correct": int(self.correct),
                "seen": self.seen, "first_bad": int(self.first_bad)}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> EpochTally:
        t = cls.new(device)
        t.loss_sum.fill_(float(state["loss_sum"]))
        t.correct.fill_(int(state["correct"]))
        t.first_bad.fill_(int(state.get("first_bad", -1)))
        t.seen = int(state["seen"])
        return t

    def take_losses(self) -> list[float]:
        """The per-step losses since the last call, as floats (one host sync)."""
        if not self.losses:
            return []
        out = torch.stack(self.losses).float().cpu().tolist()
        self.losses.clear()
        return out


def train_one_epoch(model: nn.Module, batches: Any, optimizer: torch.optim.Optimizer,
                    schedule: Schedule, cfg: TrainConfig, state: RunState, *,
                    device: torch.device, amp: torch.dtype | None = None,
                    ema: nn.Module | None = None, progress: Progress | None = None,
                    epoch: int = 0,
                    on_step: Callable[[int], bool] | None = None,
                    tally: EpochTally | None = None) -> dict[str, float]:
    """One pass over `batches`; returns loss, top-1 accuracy, lr, images/s and seconds.

    The pass ends early at `cfg.max_steps`, or when `on_step` (called after every optimiser
    step with the batch's index in the epoch; `state.step` already counts it) returns True:
    the place for work between steps, such as a mid-epoch checkpoint or a requested stop.

    `batches` resumed in the middle of an epoch (its `start`: the batches already taken) count
    from there; `tally`, the sums of the steps before (see `EpochTally`), is updated in place
    and keeps each step's loss for the caller to write out."""
    model.train()
    tally = tally if tally is not None else EpochTally.new(device)
    check_every = max(1, cfg.log_every)  # a host sync on a GPU, Python work on the CPU
    seen_now, total = 0, len(batches)
    start = int(getattr(batches, "start", 0))
    i = start - 1
    params = [p for p in model.parameters() if p.requires_grad]
    if progress:
        progress.start(f"epoch {epoch + 1}/{cfg.epochs}", total)
    t0 = time.perf_counter()
    try:
        for i, (x, y) in enumerate(batches, start):
            if cfg.max_steps is not None and state.step >= cfg.max_steps:
                break
            with autocast(device, amp):
                out = model(x)
            loss, logits = loss_fn(out, y, cfg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            schedule.after_step()
            if ema is not None:
                ema.update_parameters(model)
            state.step += 1
            n = y.shape[0]
            seen_now += n
            tally.seen += n
            loss = loss.detach()
            tally.losses.append(loss)
            tally.loss_sum += loss * n
            tally.correct += (logits.detach().argmax(1) == y).sum()
            tally.first_bad = torch.where(~torch.isfinite(loss) & (tally.first_bad < 0),
                                          state.step, tally.first_bad)
            if (i + 1) % check_every == 0 or i + 1 == total:
                check_finite(tally, state.step, i, total, epoch)
                if progress and ((i + 1) % max(1, cfg.log_every) == 0 or i + 1 == total):
                    dt = time.perf_counter() - t0
                    progress.update(i + 1, loss=float(loss), lr=schedule.lr,
                                    img_s=seen_now / max(dt, 1e-9))
            if on_step is not None and on_step(i):
                break
        if seen_now:  # the steps since the last check (a stop mid-epoch)
            check_finite(tally, state.step, i, total, epoch)
    finally:
        if progress:
            progress.stop()
    dt = time.perf_counter() - t0
    loss_sum, correct, seen = tally.loss_sum, tally.correct, tally.seen
    if dd.active():  # the epoch's figures over every process
        sums = torch.stack([loss_sum.double(), correct.double(),
                            torch.tensor(float(seen), device=device, dtype=torch.float64),
                            torch.tensor(float(seen_now), device=device, dtype=torch.float64)])
        dd.all_reduce_sum_(sums)
        loss_sum, correct, seen, seen_now = sums[0], sums[1], int(sums[2]), int(sums[3])
    seen = max(seen, 1)
    return {"loss": float(loss_sum) / seen, "top1": float(correct) / seen, "lr": schedule.lr,
            "images_per_s": seen_now / max(dt, 1e-9), "seconds": dt, "images": seen_now}


def check_finite(tally: EpochTally, step: int, i: int, total: int, epoch: int) -> None:
    """Raise TrainingDiverged if any step so far had a non-finite loss (collective under DDP:
    every process must call it at the same step)."""
    _check_finite(dd.first_bad_step(tally.first_bad), step, i, total, epoch)


def _check_finite(first_bad: torch.Tensor, step: int, i: int, total: int, epoch: int) -> None:
    bad = int(first_bad)
    if bad >= 0:
        batch = bad - (step - i - 1)
        raise TrainingDiverged(f"the loss became NaN or infinite at step {bad} "
                               f"(epoch {epoch + 1}, batch {batch} of {total})")


def warm_up(net: nn.Module, model: nn.Module, cfg: TrainConfig, input_size: tuple,
            device: torch.device, amp: torch.dtype | None, channels_last: bool,
            eval_sizes: tuple[int, int], eval_net: nn.Module | None = None) -> float:
    """Compile `net` (and `eval_net`, which evaluates, if it is another module) for the shapes
    they will see, then put back the weights and RNG state.

    Returns the seconds it took, which a run reports apart from its training time.
    """
    from ..runs.checkpoint import rng_state, set_rng_state

    saved = {k: v.clone() for k, v in model.state_dict().items()}
    rng = rng_state()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    t0 = time.perf_counter()

    def batch(n: int) -> torch.Tensor:
        return torch.randn(n, *input_size, device=device).to(memory_format=fmt)

    net.train()
    with autocast(device, amp):
        out = net(batch(cfg.batch_size))
    loss, _ = loss_fn(out, torch.zeros(cfg.batch_size, dtype=torch.long, device=device), cfg)
    loss.backward()
    net.zero_grad(set_to_none=True)
    bs, n = eval_sizes
    ev = eval_net if eval_net is not None else net
    with torch.no_grad(), autocast(device, amp):
        ev.eval()
        for size in {bs, n % bs} - {0}:
            ev(batch(size))
            if cfg.tta_flip:
                ev(batch(size).flip(-1))
    ev.train()
    net.train()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    model.load_state_dict(saved)
    set_rng_state(rng)
    return time.perf_counter() - t0
