"""One epoch of training: the loss, the optimiser steps, the NaN stop, and compile warm-up.

- The loss is checked for NaN/inf without a host sync on every step: the first bad step is
  recorded on the device and looked at every `log_every` steps (every step on the CPU, where
  it costs nothing); the check is collective under DDP, so every process stops at the same
  step.
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
from . import distributed as dd
from .config import TrainConfig
from .device import autocast
from .evaluate import split_output
from .progress import Progress
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


def train_one_epoch(model: nn.Module, batches: Any, optimizer: torch.optim.Optimizer,
                    schedule: Schedule, cfg: TrainConfig, state: RunState, *,
                    device: torch.device, amp: torch.dtype | None = None,
                    ema: nn.Module | None = None, progress: Progress | None = None,
                    epoch: int = 0,
                    on_step: Callable[[int], bool] | None = None) -> dict[str, float]:
    """One pass over `batches`; returns loss, top-1 accuracy, lr, images/s and seconds.

    The pass ends early at `cfg.max_steps`, or when `on_step` (called after every optimiser
    step with the batch's index in the epoch; `state.step` already counts it) returns True:
    the place for work between steps, such as a mid-epoch checkpoint or a requested stop."""
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    first_bad = torch.full((), -1, device=device, dtype=torch.long)
    check_every = 1 if device.type == "cpu" else max(1, cfg.log_every)
    seen, total = 0, len(batches)
    params = [p for p in model.parameters() if p.requires_grad]
    if progress:
        progress.start(f"epoch {epoch + 1}/{cfg.epochs}", total)
    t0 = time.perf_counter()
    try:
        for i, (x, y) in enumerate(batches):
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
            seen += n
            loss = loss.detach()
            loss_sum += loss * n
            correct += (logits.detach().argmax(1) == y).sum()
            first_bad = torch.where(~torch.isfinite(loss) & (first_bad < 0), state.step,
                                    first_bad)
            if (i + 1) % check_every == 0 or i + 1 == total:
                _check_finite(dd.first_bad_step(first_bad), state.step, i, total, epoch)
                if progress and ((i + 1) % max(1, cfg.log_every) == 0 or i + 1 == total):
                    dt = time.perf_counter() - t0
                    progress.update(i + 1, loss=float(loss), lr=schedule.lr,
                                    img_s=seen / max(dt, 1e-9))
            if on_step is not None and on_step(i):
                break
        if seen:  # the steps since the last check (a stop mid-epoch)
            _check_finite(dd.first_bad_step(first_bad), state.step, i, total, epoch)
    finally:
        if progress:
            progress.stop()
    dt = time.perf_counter() - t0
    if dd.active():  # the epoch's figures over every process
        sums = torch.stack([loss_sum.double(), correct.double(),
                            torch.tensor(float(seen), device=device, dtype=torch.float64)])
        dd.all_reduce_sum_(sums)
        loss_sum, correct, seen = sums[0], sums[1], int(sums[2])
    seen = max(seen, 1)
    return {"loss": float(loss_sum) / seen, "top1": float(correct) / seen, "lr": schedule.lr,
            "images_per_s": seen / max(dt, 1e-9), "seconds": dt, "images": seen}


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
    from .checkpoint import rng_state, set_rng_state

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
