"""One training run as named steps over one `Run` object; `loop.fit` calls them in order:

    setup       the checkpoint to resume (checked), the data, the model, optimiser, schedule, EMA
    restore     a resumed run's weights, optimiser, schedule, EMA, counters and RNG
    start       the run directory, config.json, the metrics log, DDP and torch.compile wrappers
    run_epochs  train, evaluate, log and checkpoint, epoch by epoch (`train_epoch`, `end_epoch`)
    finish      the test score, summary.json, plots; a diverged or interrupted run raises here

Checkpoints are written only by `save_last`, after a whole epoch, so the last one on disk is
always a good one; `train_one_epoch`'s `on_step` is where work between optimiser steps goes.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserInputError
from ..sizes import Size, fill_channels
from . import checkpoint as ck
from . import distributed as dd
from .config import TrainConfig
from .device import amp_name, device_name, resolve_amp, resolve_channels_last, resolve_device
from .epoch import RunState, TrainingDiverged, train_one_epoch, warm_up
from .evaluate import EvalResult, evaluate
from .metrics import RunLog, write_json
from .progress import Progress
from .schedules import Schedule, make_optimizer

EVAL_BATCH = 256  # evaluation needs no gradients: larger batches, fewer steps


# ---- pieces a run is made of ---------------------------------------------------------------

def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass


def build_model(cfg: TrainConfig, num_classes: int, in_channels: int,
                model_args: dict[str, Any] | None = None) -> nn.Module:
    """`cfg.model` for the data, or exactly the model a checkpoint's `model_args` describe."""
    from ..registry import create_model

    if model_args is not None:
        return create_model(cfg.model, **model_args)
    kwargs = {"num_classes": num_classes, "in_channels": in_channels, **cfg.model_args}
    return create_model(cfg.model, weights=cfg.weights, **kwargs)


def input_channels(model: nn.Module) -> int:
    """How many channels `model` takes: its registry arguments say, else its first
    convolution, else its class's default input."""
    args = getattr(model, "model_args", None) or {}
    if "in_channels" in args:
        return int(args["in_channels"])
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return conv.in_channels if conv is not None else int(model.default_input_size[0])


def model_input_size(model: nn.Module, cfg: TrainConfig) -> Size:
    """What `model` is fed: `cfg.input_size` (an 'HxW' one takes the model's channels, which
    are the data's for a model the run builds) or the model's default size."""
    channels = input_channels(model)
    if cfg.input_size is not None:
        return fill_channels(cfg.input_size, channels)
    return (channels, *(int(v) for v in model.default_input_size[1:]))  # type: ignore[return-value]


def loader(split: Any, ds: Any, cfg: TrainConfig, *, train: bool, device: torch.device,
           input_size: tuple[int, int, int], epoch: int, channels_last: bool,
           batch_size: int | None = None, ddp: dd.Dist | None = None) -> Any:
    """The batches of one epoch of `split`, augmented per `cfg.augment` when training."""
    from ..data.loader import make_loader

    return make_loader(split, batch_size=batch_size or cfg.batch_size, train=train,
                       device=device, input_size=input_size, mean=ds.mean, std=ds.std,
                       augment=cfg.augment if train else None, seed=cfg.seed,
                       epoch=epoch, workers=cfg.workers, channels_last=channels_last,
                       rank=ddp.rank if ddp else 0, world_size=ddp.world_size if ddp else 1)


def default_out(cfg: TrainConfig) -> Path:
    data = re.sub(r"[^A-Za-z0-9._-]+", "_", cfg.data.split("/")[-1] or cfg.data).strip("_")
    return Path("runs") / f"{cfg.model}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"


def with_model_identity(cfg: TrainConfig, model: nn.Module | None) -> TrainConfig:
    """`cfg` naming the caller's model by its registry name and arguments (as `create_model`
    records them), so config.json and the checkpoints describe the model that trains and
    can rebuild it. A model built outside the registry keeps the config's name as a label."""
    if model is None:
        return cfg
    name = getattr(model, "model_name", None)
    args = getattr(model, "model_args", None)
    return dataclasses.replace(cfg, model=name or cfg.model,
                               model_args=dict(args) if args is not None else cfg.model_args)


def check_same_architecture(model: nn.Module, ckpt: ck.Checkpoint) -> None:
    """Refuse to resume `ckpt` into a model of another architecture than the one it saved."""
    saved = ckpt.meta.get("model_args")
    args = getattr(model, "model_args", None)
    if args is not None and saved is not None:
        mine = json.loads(json.dumps(dict(args), default=repr))  # as the checkpoint stores it
        differ = sorted(k for k in {*mine, *saved} if mine.get(k) != saved.get(k))
        if differ:
            shown = ", ".join(f"{k}={mine.get(k)!r} (saved {saved.get(k)!r})" for k in differ)
            raise UserInputError(f"the model given differs from the one {ckpt.path} was "
                                 f"trained with: {shown}")
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in ckpt.model_state.items()}
    if own != theirs:
        bad = sorted(k for k in {*own, *theirs} if own.get(k) != theirs.get(k))
        raise UserInputError(f"the model given does not have the architecture {ckpt.path} "
                             f"saved ({len(bad)} tensors differ, e.g. {bad[0]}); resume "
                             "without passing a model, or pass the same model")


def _stats_line(epoch: int, cfg: TrainConfig, tr: dict, ev: EvalResult | None, what: str) -> str:
    line = (f"epoch {epoch}/{cfg.epochs}  loss {tr['loss']:.4f}  train acc {tr['top1']:.4f}  "
            f"lr {tr['lr']:.3g}  {tr['images_per_s']:,.0f} img/s  {tr['seconds']:.1f}s")
    if ev is not None:
        line += f"  | {what} top-1 {ev.top1:.4f} top-5 {ev.top5:.4f} loss {ev.loss:.4f}"
    return line


# ---- the run -------------------------------------------------------------------------------

class Run:
    """Everything one call of `fit` shares between its steps (see the module's docstring)."""

    def __init__(self, cfg: TrainConfig, ddp: dd.Dist | None, *,
                 resume: str | Path | None = None, data: Any = None,
                 progress: Progress | None = None, model: nn.Module | None = None,
                 extra_meta: dict[str, Any] | None = None) -> None:
        self.t_start = time.perf_counter()
        cfg.validate()
        self.cfg = with_model_identity(cfg, model)
        self.ddp, self.resume, self.data, self.model = ddp, resume, data, model
        self.extra_meta = dict(extra_meta or {})
        self.main = ddp is None or ddp.rank == 0
        self.progress = (progress or Progress()) if self.main else Progress(enabled=False)
        self.device = ddp.device if ddp is not None else resolve_device(self.cfg.device)
        self.amp = resolve_amp(self.cfg.amp, self.device)
        self.channels_last = resolve_channels_last(self.cfg.channels_last, self.device)
        self.ckpt: ck.Checkpoint | None = None
        self.state = RunState()
        self.init_report: Any = None
        self.plans: list | None = None
        self.ema: nn.Module | None = None
        self.runlog: RunLog | None = None
        self.status, self.message = "completed", ""
        self.last_eval: EvalResult | None = None
        self.train_s, self.compile_s, self.images = 0.0, 0.0, 0

    # -- setup

    def setup(self) -> None:
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN picks its fastest
        self._open_checkpoint()
        seed_everything(self.cfg.seed)
        self._load_data()
        self._make_model()
        self._make_optimiser()

    def _open_checkpoint(self) -> None:
        cfg = self.cfg
        if self.resume is not None:
            self.ckpt = ck.load_checkpoint(self.resume, prefer="last")
            self.out = self.ckpt.path.parent
            if self.ckpt.meta.get("model") != cfg.model:
                raise UserInputError(f"{self.resume} is a run of {self.ckpt.meta.get('model')}, "
                                     f"not {cfg.model}")
        else:
            self.out = Path(cfg.out) if cfg.out else default_out(cfg)
            if (self.out / "last" / ck.META).exists():
                raise UserInputError(f"{self.out} already holds a run: continue it with "
                                     f"--resume {self.out}, or choose another --out")
        if not cfg.model:
            raise UserInputError("no model given (e.g. convzoo train lenet5 --data fashion-mnist)")
        if not cfg.data and self.data is None:
            raise UserInputError("no data set given (--data NAME, e.g. fashion-mnist)")

    def _load_data(self) -> None:
        cfg = self.cfg
        if self.data is None:
            from ..data.catalog import load_dataset

            self.data = load_dataset(cfg.data, cfg.data_dir, seed=cfg.seed)
        data = self.data
        self.train_split, self.eval_split, self.eval_name = data.train, data.test, "test"
        if cfg.val_split > 0:
            from ..data.split import hold_out

            self.train_split, self.eval_split = hold_out(data.train, cfg.val_split, cfg.seed)
            self.eval_name = "val"
        self.classes = list(data.classes)
        if self.ckpt is not None and self.ckpt.class_names and \
                self.ckpt.class_names != self.classes:
            raise UserInputError(f"the data's classes differ from those the run in "
                                 f"{self.resume} was trained on")
        if cfg.mean is not None or cfg.std is not None:  # the statistics the weights expect
            self.data = dataclasses.replace(data, mean=tuple(cfg.mean or data.mean),
                                            std=tuple(cfg.std or data.std))

    def _make_model(self) -> None:
        cfg, ckpt = self.cfg, self.ckpt
        if self.model is not None:  # the caller's model trains, resumed or not
            if ckpt is not None:
                check_same_architecture(self.model, ckpt)
        else:
            self.model = build_model(cfg, len(self.classes), self.data.image_size[0],
                                     ckpt.meta.get("model_args") if ckpt else None)
        if cfg.init_from and ckpt is None:
            from .init_from import init_from

            self.init_report = init_from(self.model, cfg.init_from, cfg.init_rule)
            self.progress.line(str(self.init_report))
        self.input_size = model_input_size(self.model, cfg)
        self.model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def _make_optimiser(self) -> None:
        cfg = self.cfg
        groups = None
        if cfg.finetune:
            from .freeze import optimiser_groups

            self.plans, groups = optimiser_groups(self.model, cfg.finetune, cfg.lr,
                                                  cfg.train_last, cfg.lr_decay)
        self.optimizer = make_optimizer(self.model, cfg, groups)
        self.first_batches = self.train_batches(0)
        self.steps_per_epoch = len(self.first_batches)
        if self.steps_per_epoch == 0:
            raise UserInputError(f"the training set has fewer images than one batch "
                                 f"({cfg.batch_size}); lower --batch-size")
        total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps is not None:
            total_steps = min(total_steps, cfg.max_steps)
        self.schedule = Schedule(self.optimizer, cfg, self.steps_per_epoch, total_steps)
        if cfg.ema > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema),
                                     use_buffers=True)

    def train_batches(self, epoch: int) -> Any:
        return loader(self.train_split, self.data, self.cfg, train=True, device=self.device,
                      input_size=self.input_size, epoch=epoch,
                      channels_last=self.channels_last, ddp=self.ddp)

    # -- restore

    def restore(self) -> None:
        """A resumed run continues exactly where its last checkpoint left off."""
        ckpt = self.ckpt
        if ckpt is None:
            return
        self.model.load_state_dict(ckpt.model_state)
        ts = ckpt.training_state()
        self.schedule.load_state_dict(ts["schedule"])
        self.optimizer.load_state_dict(ts["optimizer"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt.tensors("ema"))
        m = ckpt.meta
        self.state = RunState(epoch=m["epoch"], step=m["step"],
                              best_top1=m.get("best_top1", -1.0),
                              best_epoch=m.get("best_epoch"), history=list(m.get("history", [])))
        ck.set_rng_state(ts["rng"])
        self.progress.line(f"resuming {self.out} at epoch {self.state.epoch}, "
                           f"step {self.state.step}")

    # -- start

    def start(self) -> None:
        cfg, ddp, model = self.cfg, self.ddp, self.model
        self.start_epoch = self.state.epoch
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_json(self.out / "config.json", cfg.to_dict())
            self.runlog = RunLog(self.out, self.state.history, tensorboard=cfg.tensorboard,
                                 purge_step=self.state.epoch + 1 if self.ckpt else None)
        # DDP inside torch.compile, as torch advises; checkpoints hold the unwrapped `model`
        train_net = dd.wrap(model, ddp) if ddp is not None else model
        self.net = torch.compile(train_net, mode=cfg.compile_mode) if cfg.compile else train_net
        self.eval_net = self.ema.module if self.ema is not None else self.net
        if ddp is not None and self.ema is None:  # evaluate without DDP: no per-batch collectives
            self.eval_net = torch.compile(model, mode=cfg.compile_mode) if cfg.compile else model
        dd.decorrelate_rng(ddp)
        self.meta_base = self._meta_base()

    def _meta_base(self) -> dict[str, Any]:
        """What every checkpoint of this run says about it, besides its counters."""
        cfg, data = self.cfg, self.data
        meta = {
            "model": cfg.model, "model_args": getattr(self.model, "model_args", {}),
            "class_names": self.classes, "data": cfg.data or data.name,
            "data_source": data.source, "input_size": list(self.input_size),
            "image_size": list(data.image_size), "mean": list(data.mean),
            "std": list(data.std), "recipe": cfg.recipe, "config": cfg.to_dict(),
        }
        if self.plans is not None:
            meta["finetune"] = {"mode": cfg.finetune, "groups": [
                {"name": p.name, "params": p.params, "lr": p.lr if p.trainable else None,
                 "trainable": p.trainable} for p in self.plans]}
        meta.update(self.extra_meta)
        if self.init_report is not None:
            r = self.init_report
            meta["init_from"] = {"source": r.source, "rule": r.rule, "copied": r.copied}
        return meta

    # -- the epochs

    def run_epochs(self) -> None:
        """Train until the epochs, `max_steps` or `stop_after` run out; a NaN loss or Ctrl-C
        ends the run with its status set, for `finish` to report."""
        cfg, state = self.cfg, self.state
        try:
            if cfg.compile:
                self._warm_up()
            for epoch in range(state.epoch, cfg.epochs):
                if self._out_of_steps():
                    break
                if cfg.stop_after is not None and epoch - self.start_epoch >= cfg.stop_after:
                    self.status = "stopped"
                    break
                self.end_epoch(self.train_epoch(epoch))
        except TrainingDiverged as e:
            self.status = "diverged"
            where = (f"the last good checkpoint is {self.out / 'last'} (epoch {state.epoch})"
                     if (self.out / "last" / ck.META).exists()
                     else "no checkpoint had been written yet")
            self.message = f"{e}; stopped: {where}"
        except KeyboardInterrupt:
            self.status = "interrupted"
            self.message = (f"interrupted in epoch {state.epoch + 1}; resume with "
                            f"`convzoo train --resume {self.out}`")

    def _out_of_steps(self) -> bool:
        return self.cfg.max_steps is not None and self.state.step >= self.cfg.max_steps

    def _warm_up(self) -> None:
        self.compile_s = warm_up(
            self.net, self.model, self.cfg, self.input_size, self.device, self.amp,
            self.channels_last,
            eval_sizes=(max(self.cfg.batch_size, EVAL_BATCH),
                        dd.shard_len(len(self.eval_split), self.ddp)),
            eval_net=self.eval_net if self.ddp is not None else None)
        self.progress.line(f"torch.compile: {self.compile_s:.1f} s to compile (not counted "
                           "as training time)")

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One epoch's optimiser steps; `state.epoch` counts it when it is done."""
        batches = self.first_batches if epoch == 0 else self.train_batches(epoch)
        tr = train_one_epoch(self.net, batches, self.optimizer, self.schedule, self.cfg,
                             self.state, device=self.device, amp=self.amp, ema=self.ema,
                             progress=self.progress, epoch=epoch)
        self.train_s += tr["seconds"]
        self.images += tr["images"]
        self.state.epoch = epoch + 1
        return tr

    def end_epoch(self, tr: dict[str, float]) -> None:
        """Evaluate (every `eval_every` epochs and at the end), step the schedule, log the
        epoch's row and save the checkpoints."""
        cfg, state = self.cfg, self.state
        final = state.epoch == cfg.epochs or self._out_of_steps()
        ev = None
        if final or state.epoch % max(1, cfg.eval_every) == 0:
            ev = self.last_eval = self.run_eval(self.eval_split)
        self.schedule.after_epoch(ev.err1 if ev is not None else None)
        row = {"epoch": state.epoch, "step": state.step, "lr": tr["lr"],
               "train_loss": tr["loss"], "train_top1": tr["top1"],
               "val_loss": ev.loss if ev else None, "val_top1": ev.top1 if ev else None,
               "val_top5": ev.top5 if ev else None, "epoch_s": tr["seconds"],
               "images_per_s": tr["images_per_s"]}
        is_best = ev is not None and ev.top1 > state.best_top1
        if is_best:
            state.best_top1, state.best_epoch = ev.top1, state.epoch
        if self.runlog is None:  # not rank 0: keep the history, write nothing
            state.history.append(row)
            return
        self.runlog.log_epoch(row)  # appends to state.history
        self.save_last(row)
        if is_best:
            ck.copy_checkpoint(self.out / "last", self.out / "best")
        self.progress.line(_stats_line(state.epoch, cfg, tr, ev, self.eval_name))

    def save_last(self, row: dict[str, Any]) -> None:
        """Write the run as it stands to last/ (atomically), `row` its latest metrics."""
        s = self.state
        meta = {**self.meta_base, "epoch": s.epoch, "step": s.step, "metrics": row,
                "best_top1": s.best_top1, "best_epoch": s.best_epoch, "history": s.history}
        ck.save_checkpoint(self.out / "last", model=self.model, meta=meta,
                           optimizer=self.optimizer, schedule=self.schedule, ema=self.ema)

    def run_eval(self, split: Any) -> EvalResult:
        if self.ddp is not None:  # every process evaluates rank 0's weights and statistics
            dd.broadcast_buffers_(self.ema.module if self.ema is not None else self.model)
        batches = loader(split, self.data, self.cfg, train=False, device=self.device,
                         input_size=self.input_size, epoch=0, channels_last=self.channels_last,
                         batch_size=max(self.cfg.batch_size, EVAL_BATCH), ddp=self.ddp)
        return evaluate(self.eval_net, batches, len(self.classes), device=self.device,
                        amp=self.amp, tta_flip=self.cfg.tta_flip, sharded=self.ddp is not None)

    # -- finish

    def finish(self) -> dict[str, Any]:
        """Score the test split (a completed run), write summary.json; return the summary.
        A diverged run raises TrainingDiverged, an interrupted one KeyboardInterrupt."""
        test = None
        if self.status == "completed" and self.state.epoch > 0:
            test = (self.last_eval if self.eval_name == "test" and self.last_eval is not None
                    else self.run_eval(self.data.test))
        summary = self.summary(test)
        if self.runlog is not None:
            write_json(self.out / "summary.json", summary)
            if self.cfg.plots:
                self.runlog.plots()
            self.runlog.close()
        if self.status == "diverged":
            raise TrainingDiverged(self.message)
        if self.status == "interrupted":
            self.progress.line(self.message)
            raise KeyboardInterrupt
        return summary

    def summary(self, test: EvalResult | None) -> dict[str, Any]:
        cfg, s = self.cfg, self.state
        out = {
            "model": cfg.model, "data": cfg.data or self.data.name, "status": self.status,
            "epochs": s.epoch, "steps": s.step, "best_epoch": s.best_epoch,
            "best_top1": s.best_top1 if s.best_epoch else None,
            "wall_s": time.perf_counter() - self.t_start, "train_s": self.train_s,
            "compile_s": self.compile_s,
            "images_per_s": self.images / self.train_s if self.train_s else None,
            "device": device_name(self.device), "amp": amp_name(self.amp),
            "channels_last": self.channels_last, "compile": cfg.compile,
            "recipe": cfg.recipe, "run_dir": str(self.out),
            "test": test.to_dict(self.classes) if test is not None else None,
            "versions": ck.versions(),
            **{k: v for k, v in self.meta_base.items() if k in ("finetune", *self.extra_meta)},
        }
        if self.ddp is not None:
            out["processes"] = self.ddp.world_size
        if self.message:
            out["message"] = self.message
        return out
