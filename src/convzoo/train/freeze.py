"""Freezing and learning-rate plans for transfer learning, on the model's named parameter
groups (stem, stage1 ... stageN, head): which groups train, at what rate.

Three modes, as the lectures teach them:
- `linear`: a new last layer for the new classes; only it trains, and everything before it
  (hidden layers of the head included) stays frozen in eval mode, so batch-norm statistics do
  not move: a linear model on the old features.
- `partial`: the head and the last N stages train; each earlier stage's learning rate is the
  next one's times `lr_decay` (smaller steps nearer the input); everything before is frozen.
- `full`: everything trains, with the same per-stage rates.
"""

from __future__ import annotations

import types
from dataclasses import dataclass

from torch import nn

from ..errors import UserInputError
from ..tables import Table

MODES = ("linear", "partial", "full")


@dataclass
class GroupPlan:
    name: str
    module: nn.Module
    params: int
    lr: float
    trainable: bool


def _keep_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    return nn.Module.train(self, False)


def freeze(module: nn.Module) -> None:
    """No gradients, and eval mode for good: `model.train()` leaves this part in eval."""
    for p in module.parameters():
        p.requires_grad_(False)
    module.train = types.MethodType(_keep_eval, module)  # type: ignore[method-assign]
    module.eval()


def unfreeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(True)
    if "train" in vars(module):
        del module.train


def plan(
    model: nn.Module, mode: str, lr: float, train_last: int = 1, lr_decay: float = 0.1,
) -> list[GroupPlan]:
    """Which groups train and at what rate; groups after `head` (auxiliary heads) follow it."""
    if mode not in MODES:
        raise UserInputError(f"unknown fine-tuning mode {mode!r}; choose {', '.join(MODES)}")
    if lr <= 0 or lr_decay <= 0:
        raise UserInputError("learning rate and lr-decay must be positive")
    groups = list(model.group_modules().items())
    head_at = [n for n, _ in groups].index("head")
    body, tail = groups[:head_at], groups[head_at:]
    n_stages = sum(1 for n, _ in body if n.startswith("stage"))
    if mode == "partial" and not 0 <= train_last <= len(body):
        raise UserInputError(f"--train-last must be between 0 and {len(body)} "
                             f"(this model has a stem and {n_stages} stages), got {train_last}")
    plans = []
    for i, (name, module) in enumerate(body):
        distance = len(body) - i  # 1 for the last stage
        trainable = mode == "full" or (mode == "partial" and distance <= train_last)
        plans.append(GroupPlan(name, module, _count(module), lr * lr_decay ** distance,
                               trainable))
    if mode == "linear":
        # Only the new last layer learns: hidden layers of the head (VGG's fc6/fc7) and any
        # auxiliary heads are part of the frozen feature extractor.
        head = tail[0][1]
        pre, fc = getattr(head, "pre", None), getattr(head, "fc", head)
        if pre is not None and _count(pre):
            plans.append(GroupPlan("head.pre", pre, _count(pre), lr, False))
        plans.append(GroupPlan("head", fc, _count(fc), lr, True))
        plans += [GroupPlan(n, m, _count(m), lr, False) for n, m in tail[1:]]
    else:
        plans += [GroupPlan(n, m, _count(m), lr, True) for n, m in tail]
    return plans


def apply(plans: list[GroupPlan]) -> list[dict]:
    """Freeze and unfreeze per the plan; return the optimiser's parameter groups."""
    groups = []
    for p in plans:
        if p.trainable:
            unfreeze(p.module)
            params = [t for t in p.module.parameters() if t.requires_grad]
            if params:
                groups.append({"params": params, "lr": p.lr, "name": p.name})
        else:
            freeze(p.module)
    return groups


def optimiser_groups(model: nn.Module, mode: str, lr: float, train_last: int,
                     lr_decay: float) -> tuple[list[GroupPlan], list[dict]]:
    """Plan `mode`, freeze what it freezes, and return (the plan, the optimiser's groups)."""
    plans = plan(model, mode, lr, train_last, lr_decay)
    groups = apply(plans)
    if not groups:
        name = getattr(model, "model_name", type(model).__name__)
        raise UserInputError(f"nothing to train in {name} with --mode {mode}: its last layer "
                             "has no trainable parameters (LeNet-5's RBF output is fixed); "
                             "use --mode partial or a model with a linear output")
    return plans, groups


def plan_table(plans: list[GroupPlan]) -> Table:
    rows = [[p.name, p.params, f"{p.lr:.2e}" if p.trainable else "-",
             "trains" if p.trainable else "frozen"] for p in plans]
    n_train = sum(p.params for p in plans if p.trainable)
    return Table("parameter groups", ["group", "params", "learning rate", "state"], rows,
                 [f"{n_train:,} of {sum(p.params for p in plans):,} parameters train"],
                 align_right={1, 2})


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
