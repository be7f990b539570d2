"""The training loop: `train_one_epoch`, `evaluate`, `fit`. Plain functions over a TrainConfig.

Choices:
- The loss is checked for NaN/inf without a host sync on every step: the first bad step is
  recorded on the device and looked at every `log_every` steps (every step on the CPU, where
  it costs nothing). The run then stops naming that step; checkpoints are written only after
  a whole epoch, so the last one on disk is the last good one.
- bf16 autocast and channels_last on a GPU, fp32 on the CPU (settings `amp`, `channels_last`).
  The loss is computed in fp32.
- A model may return an object with `.logits` and `.aux_logits` (GoogLeNet in training mode);
  each auxiliary loss is added with weight `aux_weight` (0.3, the paper's).
- Evaluation accuracy is a fraction; error = 1 - accuracy. Flip TTA averages the logits of an
  image and its mirror.
- Under torchrun (see `distributed`) the model is wrapped in DDP; every process evaluates its
  share of the split with the unwrapped model and rank 0's BatchNorm statistics, and the
  counts are summed, so all processes agree on the result (and on a plateau schedule's step).
  The NaN check is collective, so every process stops at the same step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConvzooError, UserInputError
from . import distributed as dd
from .config import TrainConfig
from .progress import Progress
from .schedules import Schedule, make_optimizer

log = logging.getLogger("convzoo.train")


class TrainingDiverged(ConvzooError):
    """The loss became NaN or infinite; the run stopped (exit code 1)."""


# ---- small pieces --------------------------------------------------------------------------

def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UserInputError(f"unknown device {spec!r}: use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError("--device cuda was asked for, but no CUDA GPU is available "
                             "(use --device cpu or auto)")
    return device


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if amp in ("bf16", "bfloat16"):
        return torch.bfloat16
    if amp in ("fp32", "none", "off"):
        return None
    raise UserInputError(f"unknown amp setting {amp!r}: use auto, bf16 or fp32")


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


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


def loss_fn(out: Any, y: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of the main logits plus aux_weight x that of each auxiliary classifier."""
    logits, aux = split_output(out)
    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
    for a in aux:
        loss = loss + cfg.aux_weight * F.cross_entropy(a.float(), y,
                                                       label_smoothing=cfg.label_smoothing)
    return loss, logits


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass


@dataclass
class RunState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps taken
    best_top1: float = -1.0
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


# ---- one epoch -----------------------------------------------------------------------------

def train_one_epoch(model: nn.Module, batches: Any, optimizer: torch.optim.Optimizer,
                    schedule: Schedule, cfg: TrainConfig, state: RunState, *,
                    device: torch.device, amp: torch.dtype | None = None,
                    ema: nn.Module | None = None, progress: Progress | None = None,
                    epoch: int = 0) -> dict[str, float]:
    """One pass over `batches`; returns loss, top-1 accuracy, lr, images/s and seconds."""
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
        if seen:  # the steps since the last check (a max_steps stop mid-epoch)
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


@torch.no_grad()
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


# ---- data ----------------------------------------------------------------------------------

def make_augment(spec: str | dict[str, Any] | None) -> Any:
    """An Augment from a preset's name or a table of Augment's fields."""
    from ..data.augment import AUGMENTS, Augment, get_augment

    if isinstance(spec, dict):
        try:
            return Augment(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in spec.items()})
        except TypeError as e:
            raise UserInputError(f"augment: {e}") from None
    extra = {  # small images: a shift of up to 2 pixels keeps a 28x28 digit or garment whole
        "shift": Augment(crop_pad=2),
        "shift_flip": Augment(crop_pad=2, flip=True),
        "crop_flip": AUGMENTS["cifar"],
    }
    if spec in extra:
        return extra[spec]
    try:
        return get_augment(spec)
    except UserInputError:
        raise UserInputError(f"unknown augment preset {spec!r}; choose from "
                             f"{', '.join([*AUGMENTS, *extra])} or give a table of Augment "
                             "fields") from None


def hold_out(split: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    """(train, validation) parts of a split; the same seed gives the same parts."""
    from ..data.catalog import ArraySplit, FolderSplit

    g = torch.Generator().manual_seed(seed + 7919)
    if isinstance(split, ArraySplit):
        n = split.labels.shape[0]
        perm = torch.randperm(n, generator=g)
        nv = max(1, round(n * fraction))
        v, t = perm[:nv].sort().values, perm[nv:].sort().values
        return (ArraySplit(split.images[t].contiguous(), split.labels[t]),
                ArraySplit(split.images[v].contiguous(), split.labels[v]))
    if isinstance(split, FolderSplit):
        n = len(split.samples)
        perm = torch.randperm(n, generator=g).tolist()
        nv = max(1, round(n * fraction))
        vs = set(perm[:nv])
        return (FolderSplit([s for i, s in enumerate(split.samples) if i not in vs]),
                FolderSplit([s for i, s in enumerate(split.samples) if i in vs]))
    raise TypeError(f"cannot split {type(split).__name__}")


def loader(split: Any, ds: Any, cfg: TrainConfig, *, train: bool, device: torch.device,
           input_size: tuple[int, int, int], epoch: int, channels_last: bool,
           batch_size: int | None = None, ddp: dd.Dist | None = None) -> Any:
    from ..data.loader import make_loader

    return make_loader(split, batch_size=batch_size or cfg.batch_size, train=train,
                       device=device, input_size=input_size, mean=ds.mean, std=ds.std,
                       augment=make_augment(cfg.augment) if train else None, seed=cfg.seed,
                       epoch=epoch, workers=cfg.workers, channels_last=channels_last,
                       rank=ddp.rank if ddp else 0, world_size=ddp.world_size if ddp else 1)


# ---- the run -------------------------------------------------------------------------------

def build_model(cfg: TrainConfig, num_classes: int, in_channels: int,
                model_args: dict[str, Any] | None = None) -> nn.Module:
    from ..registry import create_model

    if model_args is not None:  # a checkpoint's own arguments, to rebuild it exactly
        return create_model(cfg.model, **model_args)
    kwargs = {"num_classes": num_classes, "in_channels": in_channels, **cfg.model_args}
    return create_model(cfg.model, weights=cfg.weights, **kwargs)


def model_input_size(model: nn.Module, cfg: TrainConfig) -> tuple[int, int, int]:
    if cfg.input_size is not None:
        return tuple(cfg.input_size)  # type: ignore[return-value]
    c = getattr(model, "model_args", {}).get("in_channels", model.default_input_size[0])
    return (int(c), *model.default_input_size[1:])


def default_out(cfg: TrainConfig) -> Path:
    data = re.sub(r"[^A-Za-z0-9._-]+", "_", cfg.data.split("/")[-1] or cfg.data).strip("_")
    return Path("runs") / f"{cfg.model}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"


def _stats_line(epoch: int, cfg: TrainConfig, tr: dict, ev: EvalResult | None, what: str) -> str:
    line = (f"epoch {epoch}/{cfg.epochs}  loss {tr['loss']:.4f}  train acc {tr['top1']:.4f}  "
            f"lr {tr['lr']:.3g}  {tr['images_per_s']:,.0f} img/s  {tr['seconds']:.1f}s")
    if ev is not None:
        line += f"  | {what} top-1 {ev.top1:.4f} top-5 {ev.top5:.4f} loss {ev.loss:.4f}"
    return line


def fit(cfg: TrainConfig, *, resume: str | Path | None = None, data: Any = None,
        progress: Progress | None = None, model: nn.Module | None = None,
        extra_meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train `cfg.model` on `cfg.data`; write checkpoints, metrics and summary.json; return it.

    `model`, a model already built (fine-tuning: source weights loaded, head replaced), is used
    instead of building `cfg.model`; with `cfg.finetune` set, only the groups the mode names
    train, at their own rates. `extra_meta` goes into checkpoint.json and summary.json.

    Under torchrun (WORLD_SIZE > 1) every process calls this: the model trains with DDP, each
    process on its share of every epoch (the batch size is per process), evaluation is sharded
    and summed, and only rank 0 writes files and prints."""
    ddp = None
    if dd.launched():
        cfg.validate()
        ddp = dd.init_from_env(resolve_device(cfg.device))
    try:
        return _fit(cfg, ddp, resume=resume, data=data, progress=progress, model=model,
                    extra_meta=extra_meta)
    finally:
        dd.cleanup(ddp)


def _fit(cfg: TrainConfig, ddp: dd.Dist | None, *, resume: str | Path | None, data: Any,
         progress: Progress | None, model: nn.Module | None,
         extra_meta: dict[str, Any] | None) -> dict[str, Any]:
    from . import checkpoint as ck
    from .metrics import RunLog, write_json

    t_start = time.perf_counter()
    cfg.validate()
    main = ddp is None or ddp.rank == 0
    progress = progress or Progress()
    if not main:
        progress = Progress(enabled=False)
    device = ddp.device if ddp is not None else resolve_device(cfg.device)
    amp = resolve_amp(cfg.amp, device)
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels

    ckpt = ck.load_checkpoint(resume, prefer="last") if resume is not None else None
    if ckpt is not None:
        out = ckpt.path.parent
        if ckpt.meta.get("model") != cfg.model:
            raise UserInputError(f"{resume} is a run of {ckpt.meta.get('model')}, "
                                 f"not {cfg.model}")
    else:
        out = Path(cfg.out) if cfg.out else default_out(cfg)
        if (out / "last" / ck.META).exists():
            raise UserInputError(f"{out} already holds a run: continue it with --resume {out}, "
                                 "or choose another --out")
    if not cfg.model:
        raise UserInputError("no model given (e.g. convzoo train lenet5 --data fashion-mnist)")
    if not cfg.data and data is None:
        raise UserInputError("no data set given (--data NAME, e.g. fashion-mnist)")

    seed_everything(cfg.seed)
    if data is None:
        from ..data.catalog import load_dataset

        data = load_dataset(cfg.data, cfg.data_dir, seed=cfg.seed)
    train_split, eval_split, eval_name = data.train, data.test, "test"
    if cfg.val_split > 0:
        train_split, eval_split = hold_out(data.train, cfg.val_split, cfg.seed)
        eval_name = "val"
    classes = list(data.classes)
    if ckpt is not None and ckpt.class_names and ckpt.class_names != classes:
        raise UserInputError(f"the data's classes differ from those the run in {resume} "
                             "was trained on")

    if cfg.mean is not None or cfg.std is not None:  # the statistics the weights expect
        data = dataclasses.replace(data, mean=tuple(cfg.mean or data.mean),
                                   std=tuple(cfg.std or data.std))
    if model is None or ckpt is not None:
        model = build_model(cfg, len(classes), data.image_size[0],
                            ckpt.meta.get("model_args") if ckpt else None)
    init_report = None
    if cfg.init_from and ckpt is None:
        from .init_from import init_from

        init_report = init_from(model, cfg.init_from, cfg.init_rule)
        progress.line(str(init_report))
    input_size = model_input_size(model, cfg)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    groups, plans = None, None
    if cfg.finetune:
        from .finetune import optimiser_groups

        plans, groups = optimiser_groups(model, cfg.finetune, cfg.lr, cfg.train_last,
                                         cfg.lr_decay)
    optimizer = make_optimizer(model, cfg, groups)

    first = loader(train_split, data, cfg, train=True, device=device, input_size=input_size,
                   epoch=0, channels_last=channels_last, ddp=ddp)
    spe = len(first)
    if spe == 0:
        raise UserInputError(f"the training set has fewer images than one batch "
                             f"({cfg.batch_size}); lower --batch-size")
    total_steps = cfg.epochs * spe
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    schedule = Schedule(optimizer, cfg, spe, total_steps)
    ema = None
    if cfg.ema > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)

    state = RunState()
    if ckpt is not None:
        model.load_state_dict(ckpt.model_state)
        ts = ckpt.training_state()
        schedule.load_state_dict(ts["schedule"])
        optimizer.load_state_dict(ts["optimizer"])
        if ema is not None:
            ema.load_state_dict(ckpt.tensors("ema"))
        m = ckpt.meta
        state = RunState(epoch=m["epoch"], step=m["step"], best_top1=m.get("best_top1", -1.0),
                         best_epoch=m.get("best_epoch"), history=list(m.get("history", [])))
        ck.set_rng_state(ts["rng"])
        progress.line(f"resuming {out} at epoch {state.epoch}, step {state.step}")

    runlog = None
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", cfg.to_dict())
        runlog = RunLog(out, state.history, tensorboard=cfg.tensorboard,
                        purge_step=state.epoch + 1 if ckpt is not None else None)
    # DDP inside torch.compile, as torch advises; checkpoints hold the unwrapped `model`
    train_net = dd.wrap(model, ddp) if ddp is not None else model
    net = torch.compile(train_net, mode=cfg.compile_mode) if cfg.compile else train_net
    eval_net = ema.module if ema is not None else net
    if ddp is not None and ema is None:  # evaluate without DDP: no collectives per batch
        eval_net = torch.compile(model, mode=cfg.compile_mode) if cfg.compile else model
    dd.decorrelate_rng(ddp)

    meta_base = {
        "model": cfg.model, "model_args": getattr(model, "model_args", {}),
        "class_names": classes, "data": cfg.data or data.name, "data_source": data.source,
        "input_size": list(input_size), "image_size": list(data.image_size),
        "mean": list(data.mean), "std": list(data.std),
        "recipe": cfg.recipe, "config": cfg.to_dict(),
    }
    if plans is not None:
        meta_base["finetune"] = {"mode": cfg.finetune, "groups": [
            {"name": p.name, "params": p.params, "lr": p.lr if p.trainable else None,
             "trainable": p.trainable} for p in plans]}
    meta_base.update(extra_meta or {})
    if init_report is not None:
        meta_base["init_from"] = {"source": init_report.source, "rule": init_report.rule,
                                  "copied": init_report.copied}

    def eval_loader(split: Any) -> Any:
        return loader(split, data, cfg, train=False, device=device, input_size=input_size,
                      epoch=0, channels_last=channels_last, batch_size=max(cfg.batch_size, 256),
                      ddp=ddp)

    def run_eval(split: Any) -> EvalResult:
        if ddp is not None:  # every process evaluates rank 0's weights and statistics
            dd.broadcast_buffers_(ema.module if ema is not None else model)
        return evaluate(eval_net, eval_loader(split), len(classes), device=device, amp=amp,
                        tta_flip=cfg.tta_flip, sharded=ddp is not None)

    status, message, last_eval = "completed", "", None
    train_s = 0.0
    images = 0
    start_epoch = state.epoch
    compile_s = 0.0
    try:
        if cfg.compile:
            compile_s = warm_up(net, model, cfg, input_size, device, amp, channels_last,
                                eval_sizes=(max(cfg.batch_size, 256),
                                            dd.shard_len(len(eval_split), ddp)),
                                eval_net=eval_net if ddp is not None else None)
            progress.line(f"torch.compile: {compile_s:.1f} s to compile (not counted as "
                          "training time)")
        for epoch in range(state.epoch, cfg.epochs):
            if cfg.max_steps is not None and state.step >= cfg.max_steps:
                break
            if cfg.stop_after is not None and epoch - start_epoch >= cfg.stop_after:
                status = "stopped"
                break
            batches = first if epoch == 0 else loader(
                train_split, data, cfg, train=True, device=device, input_size=input_size,
                epoch=epoch, channels_last=channels_last, ddp=ddp)
            tr = train_one_epoch(net, batches, optimizer, schedule, cfg, state, device=device,
                                 amp=amp, ema=ema, progress=progress, epoch=epoch)
            train_s += tr["seconds"]
            images += tr["images"]
            state.epoch = epoch + 1
            final = state.epoch == cfg.epochs or (cfg.max_steps is not None
                                                  and state.step >= cfg.max_steps)
            ev = None
            if final or state.epoch % max(1, cfg.eval_every) == 0:
                ev = run_eval(eval_split)
                last_eval = ev
            schedule.after_epoch(ev.err1 if ev is not None else None)
            row = {"epoch": state.epoch, "step": state.step, "lr": tr["lr"],
                   "train_loss": tr["loss"], "train_top1": tr["top1"],
                   "val_loss": ev.loss if ev else None, "val_top1": ev.top1 if ev else None,
                   "val_top5": ev.top5 if ev else None, "epoch_s": tr["seconds"],
                   "images_per_s": tr["images_per_s"]}
            is_best = ev is not None and ev.top1 > state.best_top1
            if is_best:
                state.best_top1, state.best_epoch = ev.top1, state.epoch
            if runlog is None:
                state.history.append(row)
                continue
            runlog.log_epoch(row)  # appends to state.history
            meta = {**meta_base, "epoch": state.epoch, "step": state.step, "metrics": row,
                    "best_top1": state.best_top1, "best_epoch": state.best_epoch,
                    "history": state.history}
            ck.save_checkpoint(out / "last", model=model, meta=meta, optimizer=optimizer,
                               schedule=schedule, ema=ema)
            if is_best:
                ck.copy_checkpoint(out / "last", out / "best")
            progress.line(_stats_line(state.epoch, cfg, tr, ev, eval_name))
    except TrainingDiverged as e:
        status = "diverged"
        have = (out / "last" / ck.META).exists()
        where = (f"the last good checkpoint is {out / 'last'} (epoch {state.epoch})" if have
                 else "no checkpoint had been written yet")
        message = f"{e}; stopped: {where}"
    except KeyboardInterrupt:
        status = "interrupted"
        message = (f"interrupted in epoch {state.epoch + 1}; resume with "
                   f"`convzoo train --resume {out}`")

    test = None
    if status in ("completed", "stopped") and state.epoch > 0:
        if eval_name == "test" and last_eval is not None and status == "completed":
            test = last_eval
        elif status == "completed":
            test = run_eval(data.test)
    summary = {
        "model": cfg.model, "data": cfg.data or data.name, "status": status,
        "epochs": state.epoch, "steps": state.step, "best_epoch": state.best_epoch,
        "best_top1": state.best_top1 if state.best_epoch else None,
        "wall_s": time.perf_counter() - t_start, "train_s": train_s, "compile_s": compile_s,
        "images_per_s": images / train_s if train_s else None,
        "device": device_name(device), "amp": str(amp).replace("torch.", "") if amp else "fp32",
        "channels_last": channels_last, "compile": cfg.compile,
        "recipe": cfg.recipe, "run_dir": str(out),
        "test": test.to_dict(classes) if test is not None else None,
        "versions": ck.versions(),
        **{k: v for k, v in meta_base.items() if k in ("finetune", *(extra_meta or {}))},
    }
    if ddp is not None:
        summary["processes"] = ddp.world_size
    if message:
        summary["message"] = message
    if runlog is not None:
        write_json(out / "summary.json", summary)
        if cfg.plots:
            runlog.plots()
        runlog.close()
    if status == "diverged":
        raise TrainingDiverged(message)
    if status == "interrupted":
        progress.line(message)
        raise KeyboardInterrupt
    return summary


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


