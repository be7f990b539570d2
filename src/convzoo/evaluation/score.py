"""The one scoring path: source -> data -> class map -> normalisation -> precision -> loader ->
test-time method -> tally.

Training's per-epoch evaluation, `convzoo eval` (plain, `--tta`, ensembles), the report and the
experiments all score here, so a run's figures cannot part between them.

Definitions, one each:
- A method's prediction for an image is the mean of its views' softmax probabilities (the
  papers' averaging, see `tta`); one view is just its softmax. It is carried as log-probabilities:
  log(mean_v p_v) = logsumexp_v(log p_v) - log V, computed in float64 and rounded back to
  float32, so one view, or several identical ones, give their own log-softmax bit for bit.
- An ensemble's prediction is the mean of its members' probabilities, combined the same way.
- The loss is -log of the true class's predicted probability, from the log-probabilities: the
  cross-entropy for one view, and finite where a probability underflows.
- A model scored on data whose classes are a subset of its own (matched by name) competes only
  among those classes: each view's logits are restricted before the softmax.
- Top-k is reported for k = min(5, classes).
- Each source is scored as it was trained: its own normalisation (the data set's statistics
  when its checkpoint records none), its input size, the precision its run evaluated in, and
  its recorded `tta_flip`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserInputError
from ..models.base import split_output
from ..runtime import distributed as dd
from ..runtime.device import autocast
from .tta import TestMethod, dense_model, full_size, parse_method, view_logits


def top_k(num_classes: int) -> int:
    """The k of the "top-5" figure: 5, or the number of classes where there are fewer."""
    return min(5, num_classes)


@dataclass
class EvalResult:
    top1: float
    top5: float
    loss: float
    n: int
    k: int  # the k of "top-5" (fewer when there are few classes; see `top_k`)
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


# ---------------------------------------------------------------- predictions and the tally


def mean_of_probs(logps: Sequence[torch.Tensor]) -> torch.Tensor:
    """log of the mean of exp(logps) over the sequence (views, or ensemble members)."""
    if len(logps) == 1:
        return logps[0]
    stacked = torch.stack([p.double() for p in logps])
    return (torch.logsumexp(stacked, 0) - math.log(len(logps))).float()


def method_logprobs(model: nn.Module, x: torch.Tensor, method: str | TestMethod,
                    crop: int | tuple[int, int], dense: nn.Module | None = None,
                    logit_index: torch.Tensor | None = None) -> torch.Tensor:
    """B x K log-probabilities of a batch under a test-time method (the mean of its views'
    softmaxes), the logits restricted to `logit_index` before each softmax when given."""
    views = view_logits(model, x, method, crop, dense)
    if logit_index is not None:
        views = [v.index_select(1, logit_index) for v in views]
    return mean_of_probs([F.log_softmax(v.float(), 1) for v in views])


@torch.no_grad()
def method_probs(model: nn.Module, x: torch.Tensor, method: str | TestMethod,
                 crop: int | tuple[int, int], dense: nn.Module | None = None) -> torch.Tensor:
    """B x K class probabilities of a batch under a test-time method: the mean of its views'
    softmaxes (`method_logprobs`, exponentiated)."""
    return method_logprobs(model, x, method, crop, dense).exp()


class Tally:
    """Top-1/top-k hits, the loss and the confusion counts, added from log-probabilities batch
    by batch; summed over the processes of a sharded (DDP) evaluation by `reduce`."""

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.k = top_k(num_classes)
        self.conf = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
        self.topk = torch.zeros((), dtype=torch.long, device=device)
        self.loss = torch.zeros((), dtype=torch.float64, device=device)

    def add(self, logp: torch.Tensor, y: torch.Tensor) -> None:
        logp, y = logp.to(self.conf.device), y.to(self.conf.device)
        self.loss -= logp.gather(1, y[:, None]).double().sum()
        top = logp.topk(self.k, dim=1).indices
        self.topk += (top == y[:, None]).any(1).sum()
        cell = y * self.num_classes + top[:, 0]
        self.conf.index_add_(0, cell, torch.ones_like(cell))  # unlike bincount, no host sync

    def reduce(self) -> None:
        dd.all_reduce_sum_(self.conf, self.loss, self.topk)

    def result(self) -> EvalResult:
        cm = self.conf.view(self.num_classes, self.num_classes).cpu()
        n = max(int(cm.sum()), 1)
        rows = cm.sum(1).clamp(min=1)
        return EvalResult(top1=float(cm.diag().sum()) / n, top5=float(self.topk) / n,
                          loss=float(self.loss) / n, n=int(cm.sum()), k=self.k,
                          per_class=(cm.diag().double() / rows).tolist(), confusion=cm)


@torch.inference_mode()
def score_batches(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                  num_classes: int, method: str | TestMethod = "none", *,
                  crop: int | tuple[int, int] | None = None, device: torch.device | str = "cpu",
                  amp: torch.dtype | None = None, logit_index: torch.Tensor | None = None,
                  sharded: bool = False, keep: list[torch.Tensor] | None = None) -> EvalResult:
    """Score `model` over `batches` (normalised, at the method's full size) under `method`.

    `crop`: the model's input side (default: the batches' own, i.e. no crop). `sharded`: the
    batches are this process's share of the split (DDP); the counts are summed over the
    processes, so every process gets the result over the whole split. `keep`: a list the
    batches' log-probabilities and labels are appended to (for ensembles and the report)."""
    m = parse_method(method)
    device = torch.device(device)
    was_training = model.training
    model.eval()
    dense = dense_model(model) if m.kind == "dense" else None
    tally = Tally(num_classes, device)
    index = logit_index.to(device) if logit_index is not None else None
    try:
        for x, y in batches:
            with autocast(device, amp):
                logp = method_logprobs(model, x, m, crop or tuple(x.shape[-2:]), dense, index)
            tally.add(logp, y)
            if keep is not None:
                keep.append((logp.cpu(), y.cpu()))
    finally:
        model.train(was_training)
    if sharded:
        tally.reduce()
    return tally.result()


def evaluate(model: nn.Module, batches: Any, num_classes: int, *, device: torch.device,
             amp: torch.dtype | None = None, tta_flip: bool = False,
             logit_index: torch.Tensor | None = None, sharded: bool = False) -> EvalResult:
    """Training's evaluation of a split at the model's input size: the plain view, or with
    `tta_flip` the image and its mirror (the same `flip` as `convzoo eval --tta flip`)."""
    return score_batches(model, batches, num_classes, "flip" if tta_flip else "none",
                         device=device, amp=amp, logit_index=logit_index, sharded=sharded)


# ---------------------------------------------------------------- the plan for one source


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


@dataclass
class ClassMap:
    """How a model's classes meet a data set's: the data's class names scored, the data labels
    kept (None: all) and the model's logit for each (None: the same order)."""

    names: list[str]
    keep: list[int] | None = None
    index: torch.Tensor | None = None
    note: str | None = None


def match_classes(model_names: list[str], data_names: list[str]) -> tuple[list[int], list[int]]:
    """(data labels kept, the model's class index for each): classes are matched by name (case,
    spaces and underscores aside)."""
    index = {_norm(n): i for i, n in enumerate(model_names)}
    keep, to_model = [], []
    for label, n in enumerate(data_names):
        if _norm(n) in index:
            keep.append(label)
            to_model.append(index[_norm(n)])
    if not keep:
        raise UserInputError(
            f"none of the data's classes ({', '.join(data_names[:5])}, ...) is one the model "
            f"knows ({', '.join(model_names[:5])}, ...); evaluate on data with the same classes")
    return keep, to_model


def class_map(model_names: Sequence[str] | None, num_model_classes: int | None,
              data_names: Sequence[str], what: str = "the model") -> ClassMap:
    """Match a source's classes to the data's: by name where the source has names, else by
    count."""
    data_names = list(data_names)
    if model_names is None:
        if num_model_classes != len(data_names):
            raise UserInputError(f"{what} predicts {num_model_classes} classes without names; "
                                 f"the data have {len(data_names)}")
        return ClassMap(data_names)
    if [_norm(n) for n in model_names] == [_norm(n) for n in data_names]:
        return ClassMap(data_names)
    keep, to_model = match_classes(list(model_names), data_names)
    return ClassMap([data_names[k] for k in keep], keep, torch.tensor(to_model),
                    f"classes matched by name: {len(keep)} of the data's {len(data_names)} and "
                    f"the model's {len(model_names)}")


def restrict(split: Any, keep: list[int]) -> Any:
    """The split with only the labels in `keep`, relabelled 0..len(keep)-1 in that order."""
    from ..data.dataset import ArraySplit, FolderSplit

    new = {old: i for i, old in enumerate(keep)}
    if isinstance(split, ArraySplit):
        lut = torch.full((int(split.labels.max()) + 1,), -1, dtype=torch.long)
        for old, i in new.items():
            if old < lut.numel():
                lut[old] = i
        mapped = lut[split.labels]
        sel = mapped >= 0
        return ArraySplit(split.images[sel].contiguous(), mapped[sel])
    if isinstance(split, FolderSplit):
        return FolderSplit([(p, new[y]) for p, y in split.samples if y in new])
    raise UserInputError(f"cannot keep a subset of the classes of a {type(split).__name__}")


@dataclass
class Plan:
    """Everything that decides how one source is scored on one data set."""

    model: nn.Module
    description: str
    classes: ClassMap
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    amp: torch.dtype | None
    device: torch.device
    method: TestMethod
    notes: list[str]

    @property
    def channels_last(self) -> bool:
        # a run evaluates channels_last on the CPU (see runtime.device); scoring it later the
        # same way gives the same bits
        return self.device.type == "cpu"

    def loader(self, split: Any, batch_size: int, method: TestMethod | None = None) -> Any:
        """Evaluation batches at the method's full size: the input size, or for ten-crop a
        margin around it (see `tta.full_size`)."""
        from ..data.loader import make_loader

        m = method or self.method
        c, h, w = self.input_size
        side = full_size(m, h)
        size = (c, h, w) if side == h else (c, side, side)
        return make_loader(split, batch_size=batch_size, train=False, device=self.device,
                           input_size=size, mean=self.mean, std=self.std, augment=None, seed=0,
                           epoch=0, channels_last=self.channels_last)


def plan_for(src: Any, ds: Any, *, device: torch.device, method: str | TestMethod | None = None,
             data_is_own: bool = True) -> Plan:
    """How `src` (a loaded `runs.source.Source`) is scored on the data set `ds`.

    `method` None: the source's own (flip where its run evaluated with `tta_flip`, else none).
    `data_is_own`: `ds` is the data set the run trained on (its statistics are then the ones
    a checkpoint that records none was normalised with)."""
    from ..runtime.device import run_amp

    model = src.model
    notes: list[str] = []
    cmap = class_map(src.class_names, getattr(model, "num_classes", None), ds.classes,
                     src.description)
    if cmap.note:
        notes.append(cmap.note)
    size = tuple(src.input_size or model.default_input_size)
    if src.mean is not None and src.std is not None:
        mean, std = tuple(src.mean), tuple(src.std)
    else:
        mean, std = tuple(ds.mean), tuple(ds.std)
        if not data_is_own:
            notes.append(f"{src.description} records no normalisation: scored with "
                         f"{ds.name}'s own statistics")
    recorded = bool(src.info.setting("tta_flip"))
    m = parse_method(method) if method is not None else parse_method(
        "flip" if recorded else "none")
    if method is not None and recorded and m.kind == "none":
        m = parse_method("flip")  # the run's own evaluation averaged each image and its mirror
        notes.append(f"{src.description} evaluated with flip: scored with flip")
    amp = run_amp(src.info, device, model, size)  # type: ignore[arg-type]
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    return Plan(model, src.description, cmap, size, mean, std, amp, device,  # type: ignore[arg-type]
                m, notes)


def score(plan: Plan, split: Any, *, batch_size: int = 256, method: str | TestMethod | None = None,
          progress: Any = None, keep: list | None = None) -> EvalResult:
    """The plan's source scored on `split` (restricted to the matched classes)."""
    m = parse_method(method) if method is not None else plan.method
    if plan.classes.keep is not None:
        split = restrict(split, plan.classes.keep)
    batches = plan.loader(split, batch_size, m)
    return score_batches(plan.model, watched(batches, progress, f"{m} ({_views(m)})"),
                         len(plan.classes.names), m, crop=tuple(plan.input_size[1:]),
                         device=plan.device, amp=plan.amp, logit_index=plan.classes.index,
                         keep=keep)


def _views(m: TestMethod) -> str:
    n = m.views()
    return f"{n} view" + ("s" if n != 1 else "")


def watched(batches: Any, progress: Any, title: str) -> Iterable[tuple[torch.Tensor,
                                                                       torch.Tensor]]:
    """The batches, with a progress bar advanced after each (none when `progress` is None)."""
    if progress is None:
        yield from batches
        return
    progress.start(title, len(batches))
    t0, seen = time.perf_counter(), 0
    try:
        for i, (x, y) in enumerate(batches):
            yield x, y
            seen += len(y)
            progress.advance(i + 1, f"{seen:,} images  "
                                    f"{seen / max(time.perf_counter() - t0, 1e-9):,.1f} img/s")
    finally:
        progress.stop()


def predictions(plan: Plan, split: Any, *, batch_size: int = 256,
                method: str | TestMethod | None = None
                ) -> tuple[EvalResult, list[tuple[torch.Tensor, torch.Tensor]]]:
    """(result, [(B x K log-probabilities, B labels) per batch]) of the plan's source on
    `split`, on the CPU. Kept batch by batch, so figures tallied from them again (an ensemble
    of one member, say) add up in the same order and come out the same to the last bit."""
    kept: list = []
    res = score(plan, split, batch_size=batch_size, method=method, keep=kept)
    if not kept:
        raise UserInputError("the split has no images to evaluate")
    return res, kept


def tally_of(batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             num_classes: int) -> EvalResult:
    """The figures of (log-probabilities, labels) batches already computed (an ensemble's)."""
    t = Tally(num_classes)
    for logp, y in batches:
        t.add(logp, y)
    return t.result()


__all__ = ["ClassMap", "EvalResult", "Plan", "Tally", "class_map", "evaluate", "match_classes",
           "mean_of_probs", "method_logprobs", "method_probs", "plan_for", "predictions",
           "restrict", "score", "score_batches", "split_output", "tally_of", "top_k", "watched"]
