"""Scoring a model on a split: top-1/top-5 accuracy, loss, per-class accuracy, confusion.

Accuracy is a fraction; error = 1 - accuracy. Flip TTA averages the logits of an image and
its mirror. Sharded evaluation (DDP) sums the counts over the processes, so every process
gets the result over the whole split.

Scoring runs under `torch.inference_mode`: no autograd bookkeeping at all (no version
counters, no views tracked), which no_grad still keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime import distributed as dd
from ..runtime.device import autocast


def split_output(out: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(logits, auxiliary logits) from a tensor or an object with `.logits`/`.aux_logits`."""
    if isinstance(out, torch.Tensor):
        return out, []
    aux = getattr(out, "aux_logits", None)
    if aux is None:
        aux = []
    elif isinstance(aux, torch.Tensor):
        aux = [aux]
    return out.logits, [a for a in aux if a is not None]


@dataclass
class EvalResult:
    top1: float
    top5: float
    loss: float
    n: int
    k: int  # the k of "top-5" (fewer when there are fewer classes)
    per_class: list[float]
    confusion: torch.Tensor  # true x predicted counts

    @property
    def err1(self) -> float:
        return 1.0 - self.top1

    @property
    def err5(self) -> float:
        return 1.0 - self.top5

    def to_dict(self, names: list[str] | None = None) -> dict[str, Any]:
        names = names or [str(i) for i in range(len(self.per_class))]
        return {"top1": self.top1, "top5": self.top5, "err1": self.err1, "err5": self.err5,
                "loss": self.loss, "n": self.n, "top5_k": self.k,
                "per_class": dict(zip(names, self.per_class))}


@torch.inference_mode()
def evaluate(model: nn.Module, batches: Any, num_classes: int, *, device: torch.device,
             amp: torch.dtype | None = None, tta_flip: bool = False,
             logit_index: torch.Tensor | None = None, sharded: bool = False) -> EvalResult:
    """Top-1/top-5 accuracy, loss, per-class accuracy and confusion counts over `batches`.

    `logit_index` keeps only those logit columns (in label order), for evaluating a model on
    a data set whose classes are a subset of its own. `sharded`: `batches` are this process's
    share of the split (DDP); the counts are summed over the processes, so every process
    gets the result over the whole split.
    """
    was_training = model.training
    model.eval()
    k = min(5, num_classes)
    conf = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    top5 = torch.zeros((), device=device, dtype=torch.long)
    index = logit_index.to(device) if logit_index is not None else None
    n = 0
    for x, y in batches:
        with autocast(device, amp):
            logits = split_output(model(x))[0].float()
            if tta_flip:
                logits = (logits + split_output(model(x.flip(-1)))[0].float()) / 2
        if index is not None:
            logits = logits.index_select(1, index)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
        topk = logits.topk(k, dim=1).indices
        top5 += (topk == y[:, None]).any(1).sum()
        cell = y * num_classes + topk[:, 0]
        conf.index_add_(0, cell, torch.ones_like(cell))  # unlike bincount, no host sync
        n += y.shape[0]
    model.train(was_training)
    if sharded:
        dd.all_reduce_sum_(conf, loss_sum, top5)
        n = int(conf.sum())
    cm = conf.view(num_classes, num_classes).cpu()
    n = max(n, 1)
    rows = cm.sum(1).clamp(min=1)
    return EvalResult(top1=float(cm.diag().sum()) / n, top5=float(top5) / n,
                      loss=float(loss_sum) / n, n=int(cm.sum()), k=k,
                      per_class=(cm.diag().double() / rows).tolist(), confusion=cm)
