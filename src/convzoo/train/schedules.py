"""Optimisers and learning-rate schedules, picked by name from torch's own.

Every schedule but reduce-on-plateau is stepped once per optimiser step, so milestones given
in epochs become step counts (the rate changes at the first step of that epoch, as when
stepping per epoch). Reduce-on-plateau is stepped once per epoch with the validation top-1
error and divides the rate by 1/gamma (10, the papers' rule) when it stops improving.
A linear warm-up runs first (torch's LinearLR); the main schedule starts where it ends.

SGD, Adam and AdamW take torch's fused step (one kernel over all parameters, on the CPU and on
a GPU; on the CPU torch's own default is a Python loop over the parameters), RMSprop the
`foreach` one. The fused step gives the loop's results to rounding (tests/test_fast_path.py)
and was measured at 1.0-1.04x the loop's speed per training step on the CPU, the `foreach`
step at 0.98x; what it saves grows with the number of parameter tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim import lr_scheduler as lrs

from ..errors import UserInputError
from .config import TrainConfig


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """Trainable parameters; with `no_wd_bias_norm`, vectors (biases, norm scales) get no decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise UserInputError("the model has no trainable parameters")
    if not cfg.no_wd_bias_norm:
        return [{"params": params}]
    decay = [p for p in params if p.ndim > 1]
    rest = [p for p in params if p.ndim <= 1]
    return [g for g in ({"params": decay}, {"params": rest, "weight_decay": 0.0}) if g["params"]]


FUSED_DEVICES = ("cpu", "cuda")


def step_kind(groups: list) -> dict[str, bool]:
    """{"fused": True} when every parameter is a float tensor on a device with fused steps,
    else {} (torch's default)."""
    params = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
    ok = bool(params) and all(p.device.type in FUSED_DEVICES and p.is_floating_point()
                              for p in params)
    return {"fused": True} if ok else {}


def _foreach(groups: list) -> dict[str, bool]:
    return {"foreach": True} if step_kind(groups) else {}


def _sgd(groups: list, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.nesterov and cfg.momentum <= 0:
        raise UserInputError("nesterov needs momentum > 0")
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay, **step_kind(groups))


OPTIMIZERS: dict[str, Callable[[list, TrainConfig], torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "adam": lambda g, c: torch.optim.Adam(g, lr=c.lr, weight_decay=c.weight_decay,
                                          **step_kind(g)),
    "adamw": lambda g, c: torch.optim.AdamW(g, lr=c.lr, weight_decay=c.weight_decay,
                                            **step_kind(g)),
    "rmsprop": lambda g, c: torch.optim.RMSprop(g, lr=c.lr, momentum=c.momentum,
                                                 weight_decay=c.weight_decay, **_foreach(g)),
}


def step_name(optimizer: torch.optim.Optimizer) -> str:
    """'fused SGD', 'foreach RMSprop' or 'SGD': how the optimiser steps, for the log."""
    d = optimizer.defaults
    kind = "fused " if d.get("fused") else "foreach " if d.get("foreach") else ""
    return f"{kind}{type(optimizer).__name__}"


def make_optimizer(model: nn.Module, cfg: TrainConfig,
                   groups: list[dict[str, Any]] | None = None) -> torch.optim.Optimizer:
    """The optimiser over `groups` (each may carry its own lr) or all trainable parameters."""
    try:
        factory = OPTIMIZERS[cfg.optimizer]
    except KeyError:
        raise UserInputError(f"unknown optimizer {cfg.optimizer!r}; "
                             f"choose from {', '.join(OPTIMIZERS)}") from None
    optimizer = factory(groups if groups is not None else param_groups(model, cfg), cfg)
    optimizer.register_load_state_dict_post_hook(match_state_layout)
    return optimizer


def match_state_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give every state tensor (momentum, moments) its parameter's memory format.

    A loaded state comes back contiguous, and torch's fused CPU step walks a parameter and its
    state element by element in memory order: a channels_last weight with a contiguous
    momentum buffer is updated with another element's momentum (found by resuming a run)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p)
            if not state or p.dim() != 4:
                continue
            fmt = (torch.channels_last if p.is_contiguous(memory_format=torch.channels_last)
                   and not p.is_contiguous() else torch.contiguous_format)
            for k, v in state.items():
                if isinstance(v, torch.Tensor) and v.shape == p.shape:
                    state[k] = v.contiguous(memory_format=fmt)


# name -> factory(optimizer, cfg, steps_per_epoch, steps after warm-up) -> scheduler or None
def _in_steps(value: float, cfg: TrainConfig, spe: int) -> int:
    return max(1, round(value * spe)) if cfg.schedule_unit == "epoch" else int(value)


def _step(opt, cfg, spe, n):
    return lrs.StepLR(opt, step_size=_in_steps(cfg.step_size, cfg, spe), gamma=cfg.gamma)


def _multistep(opt, cfg, spe, n):
    if not cfg.milestones:
        raise UserInputError("the multistep schedule needs milestones, e.g. --set "
                             "milestones=[30,60]")
    return lrs.MultiStepLR(opt, [_in_steps(m, cfg, spe) for m in cfg.milestones], cfg.gamma)


def _cosine(opt, cfg, spe, n):
    return lrs.CosineAnnealingLR(opt, T_max=max(1, n), eta_min=cfg.min_lr)


def _onecycle(opt, cfg, spe, n):
    # torch needs at least one step in each phase; very short runs get a longer rise
    n = max(4, n)
    pct = min(max(cfg.pct_start, 2.0 / n), 0.5)
    return lrs.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=n,
                          pct_start=pct, div_factor=cfg.div_factor,
                          final_div_factor=cfg.final_div_factor, cycle_momentum=False)


def _plateau(opt, cfg, spe, n):
    return lrs.ReduceLROnPlateau(opt, mode="min", factor=cfg.gamma, patience=cfg.patience,
                                 min_lr=cfg.min_lr)


SCHEDULES: dict[str, Callable | None] = {
    "constant": None, "step": _step, "multistep": _multistep, "cosine": _cosine,
    "onecycle": _onecycle, "plateau": _plateau,
}


class Schedule:
    """Warm-up then the named schedule; call `after_step()` per step, `after_epoch(err)` per
    epoch. Its state (a plain dict) resumes it exactly."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                 steps_per_epoch: int, total_steps: int) -> None:
        if cfg.schedule not in SCHEDULES:
            raise UserInputError(f"unknown schedule {cfg.schedule!r}; "
                                 f"choose from {', '.join(SCHEDULES)}")
        if cfg.schedule_unit not in ("epoch", "step"):
            raise UserInputError("schedule_unit is 'epoch' or 'step'")
        self.optimizer, self.cfg, self.spe = optimizer, cfg, steps_per_epoch
        self.warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
        if self.warmup_steps and cfg.schedule == "onecycle":
            raise UserInputError("one-cycle warms up by itself (pct_start): "
                                 "leave warmup_epochs at 0")
        self.main_steps = max(1, total_steps - self.warmup_steps)
        self.per_epoch = cfg.schedule == "plateau"
        self.steps = 0
        #: the main schedule's steps taken before it was last re-planned (see `load_state_dict`)
        self.main_start = 0
        #: what a resume changed about the schedule, for the run's log (None: nothing)
        self.note: str | None = None
        self.warmup: lrs.LinearLR | None = None
        self.main: Any = None
        if self.warmup_steps:
            self.warmup = lrs.LinearLR(optimizer, start_factor=cfg.warmup_start,
                                       end_factor=1.0, total_iters=self.warmup_steps)
        else:
            self._start_main()

    def _start_main(self) -> None:
        factory = SCHEDULES[self.cfg.schedule]
        if factory is not None:
            self.main = factory(self.optimizer, self.cfg, self.spe, self.main_steps)

    @property
    def lr(self) -> float:
        """The largest group's rate: the head's when fine-tuning gives earlier groups smaller
        ones (the rate the user set), the only one otherwise."""
        return max(float(g["lr"]) for g in self.optimizer.param_groups)

    def after_step(self) -> None:
        self.steps += 1
        if self.warmup is not None and self.steps <= self.warmup_steps:
            self.warmup.step()
            if self.steps == self.warmup_steps:
                self._start_main()
        elif self.main is not None and not self.per_epoch:
            # one-cycle refuses to step past its end; a run extended on resume stays there
            if not isinstance(self.main, lrs.OneCycleLR) or \
                    self.main.last_epoch < self.main.total_steps - 1:
                self.main.step()

    def after_epoch(self, val_error: float | None) -> None:
        if self.per_epoch and self.main is not None and val_error is not None:
            self.main.step(val_error)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "main_start": self.main_start,
                "warmup": self.warmup.state_dict() if self.warmup is not None else None,
                "main": self.main.state_dict() if self.main is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back a saved state; call it after the optimiser's state is back (a re-planned
        cosine continues from the optimiser's current rates).

        A cosine schedule's shape depends on the run's length. A run resumed with more (or
        fewer) steps than it was planned for would follow torch's cosine past its end, where
        the rate climbs back up; instead the rest of the schedule is re-planned from where it
        stands: the rate goes on down from its present value to `min_lr` over the steps now
        left, and `note` says so. (For the exact continuation of a planned run, resume with
        its own length and use `stop_after` to stop early.)"""
        self.steps = int(state["steps"])
        self.main_start = int(state.get("main_start", 0))
        if self.warmup is not None and state.get("warmup") is not None:
            self.warmup.load_state_dict(state["warmup"])
        if state.get("main") is not None:
            if self.main is None:
                self._start_main()
            self.main.load_state_dict(state["main"])
            if isinstance(self.main, lrs.CosineAnnealingLR):
                self._replan_cosine()

    def _replan_cosine(self) -> None:
        done = self.main_start + max(0, self.main.last_epoch)
        planned = self.main_start + self.main.T_max
        if planned == self.main_steps:
            return  # the run's length is the one its schedule was planned for
        left = self.main_steps - done
        if left < 1:
            self.note = (f"the cosine schedule has run its {done} steps: the rate stays at "
                         f"{self.lr:.3g}")
            self.main = None
            return
        self.main_start = done
        self.main = lrs.CosineAnnealingLR(self.optimizer, T_max=left, eta_min=self.cfg.min_lr)
        self.note = (f"the run is now {self.main_steps + self.warmup_steps} steps long, not "
                     f"{planned + self.warmup_steps}: its cosine schedule is "
                     f"re-planned from here, the rate going on down from {self.lr:.3g} to "
                     f"{self.cfg.min_lr:g} over the {left} steps left")


def progressive_side(cfg: TrainConfig, epoch: int, step: int = 32) -> int | None:
    """The training input's side in `epoch` under progressive resizing, or None when off:
    linear from cfg.progressive_from (first epoch) to cfg.progressive_to (last), rounded to
    a multiple of `step` (as FFCV does, so the sizes are few and kernels are reused). A pure
    function of the epoch: a resumed run gets the sizes the uninterrupted one had."""
    if not cfg.progressive_from:
        return None
    t = epoch / max(cfg.epochs - 1, 1)
    side = cfg.progressive_from + (cfg.progressive_to - cfg.progressive_from) * min(t, 1.0)
    return max(step, int(round(side / step)) * step)
