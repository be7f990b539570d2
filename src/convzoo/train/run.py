"""One training run as named steps over one `Run` object; `loop.fit` calls them in order:

    setup       the run directory's lock, the checkpoint to resume (checked against the
                settings), the data, the model, optimiser, schedule, EMA
    restore     a resumed run's weights, optimiser, schedule, EMA, counters, RNG states and
                the loader's position within its epoch
    start       config.json, the metrics and step logs, DDP and torch.compile wrappers
    run_epochs  train, evaluate, log and checkpoint, epoch by epoch (`train_epoch`, `end_epoch`)
    finish      the test score, summary.json, plots; a diverged or interrupted run raises here
    close       the lock is let go (`fit` calls it whatever happened)

Checkpoints are written only by `save_last`: after every epoch, and inside one every
`save_every` steps and/or `save_minutes` minutes, and when a signal asks the run to stop
(`signals`). A mid-epoch `last` holds what resuming exactly needs besides the weights and
optimiser: every RNG state (each process's, under DDP), the loader's position (epoch and
batches taken; the loader's randomness is a function of its seed and position) and the
epoch's running sums. No save happens after a non-finite loss: the check runs first. A run
stopped at any step and resumed takes the same steps with the same losses (steps.csv) and
ends with the same weights as one never stopped.

Resuming keeps the run's settings: a differing one outside `RESUMABLE` (batch size, data,
learning rate, ...) is refused with the fields named, and a run already finished is left as
it is (`fit` returns its summary with `already_finished`).

Under torchrun's agent no --resume is needed: a run directory that already holds a checkpoint
is this job's run (restarted workers, or the job started again) and every process resumes it
from `last`, or refuses in one line if its settings differ (`_find_own_run`). A run resumed
at another number of processes follows the rule in `elastic`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.split import validation_split
from ..errors import UserInputError
from ..evaluation.score import EvalResult, evaluate
from ..runs import checkpoint as ck
from ..runs.disk import unique_dir, write_text_atomic
from ..runs.lock import RunLock
from ..runs.metrics import RunLog, write_json
from ..runtime import distributed as dd
from ..runtime.cpu_kernels import apply_cpu_kernels, remove_cpu_kernels
from ..runtime.device import (
    amp_name,
    autocast,
    cpu_auto_amp,
    cpu_fast_path_line,
    cpu_threads,
    device_name,
    resolve_amp,
    resolve_channels_last,
    resolve_device,
)
from ..runtime.progress import Progress
from ..runtime.signals import StopOnSignal, TrainingInterrupted, signal_name
from ..sizes import Size, fill_channels
from . import elastic
from .callbacks import StepEvent, call
from .config import TrainConfig
from .epoch import EpochTally, RunState, TrainingDiverged, check_finite, train_one_epoch, warm_up
from .schedules import Schedule, make_optimizer, step_name

EVAL_BATCH = 256  # evaluation needs no gradients: larger batches, fewer steps
#: Settings a resumed run may change: how long it goes on, where and how fast it runs, what it
#: reports and how often it saves. Any other would train other than the run was trained, so
#: resuming with it is refused.
RESUMABLE = frozenset({
    "epochs", "max_steps", "stop_after", "device", "workers", "threads", "data_dir", "compile",
    "compile_mode", "out", "eval_every", "log_every", "plots", "tensorboard", "save_every",
    "save_minutes",
})
STEPS_FILE = "steps.csv"


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
           batch_size: int | None = None, ddp: dd.Dist | None = None,
           start_batch: int = 0) -> Any:
    """The batches of one epoch of `split`, augmented per `cfg.augment` when training."""
    from ..data.loader import make_loader
    from .schedules import progressive_side

    side = progressive_side(cfg, epoch) if train else None
    if side is not None:  # progressive resizing: training only; evaluation keeps the size
        input_size = (input_size[0], side, side)
    return make_loader(split, batch_size=batch_size or cfg.batch_size, train=train,
                       device=device, input_size=input_size, mean=ds.mean, std=ds.std,
                       augment=cfg.augment if train else None, seed=cfg.seed,
                       epoch=epoch, workers=cfg.workers, channels_last=channels_last,
                       rank=ddp.rank if ddp else 0, world_size=ddp.world_size if ddp else 1,
                       start_batch=start_batch)


def default_out(cfg: TrainConfig, claim: bool = False) -> Path:
    """runs/MODEL-DATA-TIME; `claim`: created now, numbered if taken (two runs a second)."""
    data = re.sub(r"[^A-Za-z0-9._-]+", "_", cfg.data.split("/")[-1] or cfg.data).strip("_")
    # under torchrun: the job's id, the same on every node and after every restart, so a
    # restarted job finds its own run (never numbered: that would lose it)
    job = re.sub(r"[^A-Za-z0-9._-]+", "_", dd.run_id() or "")
    if job:
        return Path("runs") / f"{cfg.model}-{data}-{job}"
    base = Path("runs") / f"{cfg.model}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"
    return unique_dir(base) if claim else base


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


def top_k(ev: EvalResult, classes: int) -> float | None:
    """The top-5 (top-k) accuracy where it says something: k below the number of classes
    (with 3 classes a 'top-3' is always 1)."""
    return ev.top5 if ev.k < classes else None


def _stats_line(epoch: int, cfg: TrainConfig, tr: dict, ev: EvalResult | None, what: str,
                classes: int) -> str:
    line = (f"epoch {epoch}/{cfg.epochs}  loss {tr['loss']:.4f}  train acc {tr['top1']:.4f}  "
            f"lr {tr['lr']:.3g}  {tr['images_per_s']:,.0f} img/s  {tr['seconds']:.1f}s")
    if ev is not None:
        k = top_k(ev, classes)
        topk = f" top-{ev.k} {k:.4f}" if k is not None else ""
        line += f"  | {what} top-1 {ev.top1:.4f}{topk} loss {ev.loss:.4f}"
    return line


class StepLog:
    """steps.csv: `step,epoch,loss` for every optimiser step (under DDP, rank 0's share), the
    exact float32 loss. A resumed run first drops the rows after its checkpoint's step (the
    previous process may have got further before it was stopped), so the file always matches
    the run's weights."""

    def __init__(self, path: Path, keep_until: int | None) -> None:
        self.path = path
        rows = []
        if keep_until is not None and path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
                parts = line.split(",")
                if len(parts) == 3 and parts[0].isdigit() and int(parts[0]) <= keep_until:
                    rows.append(line)
        write_text_atomic(path, "\n".join(["step,epoch,loss", *rows]) + "\n")

    def append(self, last_step: int, epoch: int, losses: list[float]) -> None:
        """`losses` of the consecutive steps ending at `last_step`, in epoch `epoch` (from 1)."""
        if not losses:
            return
        first = last_step - len(losses) + 1
        with open(self.path, "a", encoding="utf-8") as f:
            f.writelines(f"{first + k},{epoch},{v!r}\n" for k, v in enumerate(losses))


def read_steps(run_dir: str | Path) -> list[tuple[int, int, float]]:
    """The rows of a run's steps.csv as (step, epoch, loss)."""
    lines = (Path(run_dir) / STEPS_FILE).read_text(encoding="utf-8").splitlines()[1:]
    return [(int(a), int(b), float(c)) for a, b, c in (line.split(",") for line in lines)]


# ---- the run -------------------------------------------------------------------------------

class Run:
    """Everything one call of `fit` shares between its steps (see the module's docstring)."""

    def __init__(self, cfg: TrainConfig, ddp: dd.Dist | None, *,
                 resume: str | Path | None = None, data: Any = None,
                 progress: Progress | None = None, model: nn.Module | None = None,
                 extra_meta: dict[str, Any] | None = None,
                 stop: StopOnSignal | None = None,
                 callbacks: Sequence[Any] = ()) -> None:
        self.t_start = time.perf_counter()
        cfg.validate()
        self.cfg = with_model_identity(cfg, model)
        self.ddp, self.resume, self.data, self.model = ddp, resume, data, model
        self.extra_meta = dict(extra_meta or {})
        self.callbacks = list(callbacks)
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
        #: set by a signal (see `signals`); `fit` installs the handlers
        self.stop = stop if stop is not None else StopOnSignal()
        #: end this invocation once this many steps are taken, saving `last` there (status
        #: "stopped"): a stop at any step, for resuming later
        self.stop_at_step: int | None = None
        self.cpu_kernels: list[str] = []  # the faster CPU layers swapped in (cpu_kernels.py)
        self.threads_before: int | None = None  # torch's thread count, given back at close
        self.cpu_choice: str | None = None  # the threads a CPU run computes with, and why
        self.lock: RunLock | None = None
        self.steplog: StepLog | None = None
        self.resume_at: tuple[int, int] | None = None  # (epoch, batches taken) of a resumed epoch
        self.resume_tally: dict[str, Any] | None = None
        self.rng_per_rank = False  # each process's RNG state came back from the checkpoint
        self.saved: tuple[int, int] | None = None  # (epoch, step) of the last save
        self.last_save_t = time.monotonic()
        self.already_finished = False
        self.made_out = False  # this run created its directory
        self.start_epoch = 0  # the epoch this invocation starts from (a resumed run's)
        # What `setup` and `start` build, in their order; until then, None. A caller that
        # needs them drives `fit`'s steps in order (setup, restore, start), as `fit` does.
        self.out: Path | None = None  # the run directory (`_open_checkpoint`)
        self.validation: Any = None  # the split `best` is chosen on, and what the log says
        self.train_split: Any = None
        self.said_settle = False  # the batch-norm re-estimation is said once
        self.eval_split: Any = None
        self.eval_name = "test"  # what `eval_split` is called in the log: val or test
        self.classes: list[str] = []
        self.input_size: Size | None = None  # what the model is fed (`_make_model`)
        self.optimizer: torch.optim.Optimizer | None = None
        self.schedule: Schedule | None = None
        self.first_batches: Any = None  # epoch 0's loader, built to count its steps
        self.steps_per_epoch = 0
        self.net: nn.Module | None = None  # what trains: the model, DDP-wrapped or compiled
        self.eval_net: nn.Module | None = None  # what evaluates: the EMA or the model
        self.meta_base: dict[str, Any] = {}  # what every checkpoint says of the run
        #: why a run resumed without --resume (a torchrun restart, the same run found in --out)
        self.auto_resume: str | None = None
        #: the process counts the run has run at (see `elastic`)
        self.world_sizes: list[dict[str, Any]] = []

    # -- setup

    def setup(self) -> None:
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN picks its fastest
        # threads from the cores free (torchrun sets OMP_NUM_THREADS, which is kept)
        if self.device.type == "cpu":
            self.threads_before = torch.get_num_threads()
        threads = cpu_threads(self.cfg.threads) if self.device.type == "cpu" else None
        self._open_checkpoint()
        if threads is not None and self.ckpt is not None:
            threads = self._resume_threads(threads)
        seed_everything(self.cfg.seed)
        self._load_data()
        self._make_model()
        self._make_optimiser()
        if threads is not None:
            self.cpu_choice = str(threads)
            if self.cfg.amp == "auto":
                self.amp, why = cpu_auto_amp(self.model, self.input_size)
            else:
                why = amp_name(self.amp)
            if not self.cfg.compile:  # a compiled graph fuses on its own
                self.cpu_kernels = apply_cpu_kernels(self.model, self.input_size,
                                                     self.channels_last)
                if self.ema is not None:  # evaluated only: no gradients to keep in a layout
                    apply_cpu_kernels(self.ema.module, self.input_size, False)
            self.progress.line(cpu_fast_path_line(threads, self.channels_last,
                                                  step_name(self.optimizer), why,
                                                  self.cpu_kernels))

    def _resume_threads(self, choice: Any) -> Any:
        """A resumed CPU run takes the thread count the run had, unless the user set one: the
        count decides how reductions are split, so the same count gives the same bits."""
        from ..runtime import device as dv

        saved = self.ckpt.meta.get("cpu_threads") if self.ckpt is not None else None
        if (not isinstance(saved, int) or isinstance(saved, bool) or saved < 1
                or saved == choice.threads):
            return choice
        if self.cfg.threads is not None or dv._env_threads() is not None:
            # the user's count is kept, and named as what makes this resume inexact
            why = (f"{choice.reason}; the run saved at {saved}, so its steps will not match an "
                   f"uninterrupted run bit for bit (resume without a thread count to keep them)")
            logging.getLogger("convzoo.train").warning(
                "resuming at %d threads, not the run's %d: %s", choice.threads, saved,
                "its steps will not match an uninterrupted run bit for bit (leave out "
                "--threads and OMP_NUM_THREADS to keep them)")
            return dv.ThreadChoice(choice.threads, why)
        torch.set_num_threads(saved)
        return dv.ThreadChoice(saved, "the resumed run's own count, for an exact resume")

    def _open_checkpoint(self) -> None:
        cfg = self.cfg
        if self.resume is None and dd.under_agent():
            self._find_own_run(Path(cfg.out) if cfg.out else default_out(cfg))
        if self.resume is not None:
            # the lock first: another process may be writing the checkpoint about to be read
            self.out = ck.resolve(self.resume, prefer="last").parent
            if self.lock is None:
                self._take_lock()
            dd.barrier()  # rank 0 has cleaned up what a killed save left; all read the rest
            self.ckpt = ck.load_checkpoint(self.resume, prefer="last")
            self.out = self.ckpt.path.parent
            if self.ckpt.meta.get("model") != cfg.model:
                raise UserInputError(f"{self.resume} is a run of {self.ckpt.meta.get('model')}, "
                                     f"not {cfg.model}")
            self._check_resume_config()
            self.cfg = cfg = dataclasses.replace(cfg, out=str(self.out))  # where it now runs
            dd.barrier()  # every process has read the checkpoint before rank 0 writes again
        else:
            self.out = Path(cfg.out) if cfg.out else default_out(cfg, claim=self.main)
            if self.lock is None:
                self._take_lock()
                # runs/MODEL-DATA-TIME was created just now, to claim the name: it is this
                # run's own, and removed again if the run never starts
                self.made_out = self.made_out or (not cfg.out and self.main)
            if ck.holds_run(self.out):  # also what a kill mid-swap leaves: last.prev, .last.old
                raise UserInputError(f"{self.out} already holds a run: continue it with "
                                     f"--resume {self.out}, or choose another --out")
        if not cfg.model:
            raise UserInputError("no model given (e.g. convzoo train lenet5 --data fashion-mnist)")
        if not cfg.data and self.data is None:
            raise UserInputError("no data set given (--data NAME, e.g. fashion-mnist)")

    def _find_own_run(self, out: Path) -> None:
        """Under torchrun's agent, a run directory that already holds a checkpoint is this
        job's own run (restarted workers, or the job started again): it resumes from `last`
        without --resume, if its settings are the same (`_check_resume_config` refuses
        others). Rank 0 looks after taking the lock; the others wait and see what it left."""
        self.out = out
        self._take_lock()
        dd.barrier()
        if ck.holds_run(out):
            self.resume = out
            n = dd.restart_count()
            self.auto_resume = (f"torchrun restart {n}" if n else
                                "its checkpoint found in --out, same settings")

    def _take_lock(self) -> None:
        """One writer per run directory (rank 0 writes for all under DDP); a save a kill
        interrupted left a temporary directory, removed now that the lock is ours."""
        if not self.main:
            return
        if self.out.exists() and not self.out.is_dir():
            raise UserInputError(f"{self.out} is a file, not a run directory; choose another "
                                 "--out")
        self.made_out = not self.out.exists()  # removed again if the run never starts
        self.lock = RunLock(self.out).acquire()
        if self.lock.took_over:
            self.progress.line(f"took over the lock of {self.out} from a run that is gone "
                               f"(pid {self.lock.took_over.get('pid', '?')})")
        ck.clean_leftovers(self.out)

    def _check_resume_config(self) -> None:
        """Refuse settings that differ from the resumed run's, but for `RESUMABLE` ones."""
        assert self.ckpt is not None
        saved = self.ckpt.meta.get("config")
        if not isinstance(saved, dict):
            return
        mine = json.loads(json.dumps(self.cfg.to_dict(), default=repr))  # as the run stored it
        # a caller's model names its full arguments; `check_same_architecture` compares those
        skip = RESUMABLE | ({"model_args"} if self.model is not None else set())
        differ = sorted(k for k in mine if k not in skip and k in saved and mine[k] != saved[k])
        if differ:
            shown = ", ".join(f"{k} {mine[k]!r} (the run's: {saved[k]!r})" for k in differ)
            if self.auto_resume is not None:
                raise UserInputError(
                    f"{self.out} holds a run with other settings: {shown}; under torchrun a "
                    "job resumes the run in its --out: start it with that run's settings, "
                    "or give another --out")
            raise UserInputError(
                f"{self.out} was trained with other settings: {shown}; a resumed run keeps "
                f"its settings except {', '.join(sorted(RESUMABLE - {'out'}))} (to change "
                "others, start a new run with another --out)")

    def close(self) -> None:
        """Give the model back as it was built, the process its thread count (a caller of
        `fit` keeps its own), and let go of the run directory."""
        if self.threads_before is not None:
            torch.set_num_threads(self.threads_before)
        if self.cpu_kernels and self.model is not None:
            remove_cpu_kernels(self.model)
            if self.ema is not None:
                remove_cpu_kernels(self.ema.module)
        if self.lock is not None:
            self.lock.release()
            self.lock = None
            if self.made_out and self.runlog is None:  # failed before `start`: no empty dir
                try:
                    self.out.rmdir()
                except OSError:  # something was written there after all: it stays
                    pass

    def _load_data(self) -> None:
        cfg = self.cfg
        if self.data is None:
            from ..data.catalog import load_dataset

            self.data = load_dataset(cfg.data, cfg.data_dir, seed=cfg.seed)
        data = self.data
        # best/ is chosen on validation images, never on the test split (data/split.py)
        self.validation = validation_split(data, cfg.val_split, cfg.seed)
        self.progress.line(self.validation.line)
        self.train_split = self.validation.train
        self.eval_split, self.eval_name = ((self.validation.val, "val")
                                           if self.validation.val is not None
                                           else (data.test, "test"))
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
        n = len(self.train_split) // (self.ddp.world_size if self.ddp else 1)
        if n > self.steps_per_epoch * cfg.batch_size:  # said, never silent
            self.progress.line(f"each epoch trains on {self.steps_per_epoch * cfg.batch_size:,}"
                               f" of the {n:,} training images: the partial last batch of "
                               f"{n - self.steps_per_epoch * cfg.batch_size} is left out (other "
                               "images each epoch, as they are shuffled)")
        total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps is not None:
            total_steps = min(total_steps, cfg.max_steps)
        self.schedule = Schedule(self.optimizer, cfg, self.steps_per_epoch, total_steps)
        if cfg.ema > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema),
                                     use_buffers=True)

    def train_batches(self, epoch: int, start_batch: int = 0) -> Any:
        return loader(self.train_split, self.data, self.cfg, train=True, device=self.device,
                      input_size=self.input_size, epoch=epoch,
                      channels_last=self.channels_last, ddp=self.ddp, start_batch=start_batch)

    # -- restore

    def restore(self) -> None:
        """A resumed run continues exactly where its last checkpoint left off."""
        ckpt = self.ckpt
        if ckpt is None:
            return
        self.model.load_state_dict(ckpt.model_state)
        ts = ckpt.training_state()
        m = ckpt.meta
        extra = ckpt.extra_state() or {}
        pos = extra.get("loader")
        batch = (int(pos["batch"]) if isinstance(pos, dict) and pos.get("epoch") == m["epoch"]
                 and pos.get("batch") else 0)
        world = self.ddp.world_size if self.ddp is not None else 1
        old_world = elastic.saved_world_size(m, extra)
        self.world_sizes = elastic.world_history(m)
        change = None
        if old_world != world:  # torchrun --nnodes MIN:MAX: a node lost or joined
            old_batch = batch
            batch, rounded = elastic.convert_position(batch, old_world, world)
            elastic.restore_at_new_world(self.schedule, self.optimizer, ts,
                                         m["epoch"] * self.steps_per_epoch + batch)
            self.world_sizes.append({"world_size": world, "from_step": m["step"],
                                     "epoch": m["epoch"]})
            bs = self.cfg.batch_size
            change = (f"world size {old_world} -> {world} at step {m['step']}: the batch per "
                      f"process stays {bs} (a step takes {bs * world} images, was "
                      f"{bs * old_world}); the learning rate follows the recipe's schedule at "
                      f"epoch {m['epoch'] + batch / self.steps_per_epoch:.2f} "
                      f"({self.schedule.lr:.3g}); epoch {m['epoch'] + 1} goes on at batch "
                      f"{batch} of {self.steps_per_epoch} (was {old_batch})"
                      + (", rounded down: part of one batch is seen again" if rounded else ""))
        else:
            self.optimizer.load_state_dict(ts["optimizer"])
            # after: a re-planned cosine needs the rates
            self.schedule.load_state_dict(ts["schedule"])
            if self.schedule.note:
                self.progress.line(self.schedule.note)
        if self.ema is not None:
            self.ema.load_state_dict(ckpt.tensors("ema"))
        self.state = RunState(epoch=m["epoch"], step=m["step"],
                              best_top1=m.get("best_top1", -1.0),
                              best_epoch=m.get("best_epoch"), history=list(m.get("history", [])))
        rngs = extra.get("rank_rng")
        if isinstance(rngs, list) and len(rngs) == world and world > 1:
            ck.set_rng_state(rngs[self.ddp.rank])  # type: ignore[union-attr]
            self.rng_per_rank = True
        else:
            ck.set_rng_state(ts["rng"])
        where = f"epoch {self.state.epoch}, step {self.state.step}"
        if batch:
            if not 0 < batch < self.steps_per_epoch:
                raise UserInputError(f"{ckpt.path}: its loader position (batch {batch}) does "
                                     f"not fit an epoch of {self.steps_per_epoch} batches")
            self.resume_at = (self.state.epoch, batch)
            if self.main:  # the sums of all processes, kept by rank 0
                self.resume_tally = extra.get("tally")
            where = (f"epoch {self.state.epoch + 1}, batch {batch} of {self.steps_per_epoch} "
                     f"(step {self.state.step})")
        self.saved = (self.state.epoch, self.state.step)
        how = f" ({self.auto_resume})" if self.auto_resume else ""
        self.progress.line(f"resuming {self.out} at {where}{how}")
        if change is not None:
            self.progress.line(change)

    def finished(self) -> bool:
        """Whether a resumed run has nothing left to do: its epochs or steps are done and its
        summary says it completed (a signal in the last evaluation leaves the test score and
        the summary to do)."""
        done = self.ckpt is not None and self.resume_at is None and (
            self.state.epoch >= self.cfg.epochs or self._out_of_steps())
        if not done:
            return False
        try:
            old = json.loads((self.out / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(old, dict) and old.get("status") == "completed"

    # -- start

    def start(self) -> None:
        cfg, ddp, model = self.cfg, self.ddp, self.model
        self.start_epoch = self.state.epoch
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_json(self.out / "config.json", cfg.to_dict())
            self.runlog = RunLog(self.out, self.state.history, tensorboard=cfg.tensorboard,
                                 purge_step=self.state.epoch + 1 if self.ckpt else None,
                                 step_purge=self.state.step + 1 if self.ckpt else None)
            self.steplog = StepLog(self.out / STEPS_FILE,
                                   self.state.step if self.ckpt is not None else None)
        # DDP inside torch.compile, as torch advises; checkpoints hold the unwrapped `model`
        train_net = dd.wrap(model, ddp) if ddp is not None else model
        self.net = torch.compile(train_net, mode=cfg.compile_mode) if cfg.compile else train_net
        self.eval_net = self.ema.module if self.ema is not None else self.net
        if ddp is not None and self.ema is None:  # evaluate without DDP: no per-batch collectives
            self.eval_net = torch.compile(model, mode=cfg.compile_mode) if cfg.compile else model
        if not self.rng_per_rank:
            dd.decorrelate_rng(ddp)
        if not self.world_sizes:
            self.world_sizes = [{"world_size": ddp.world_size if ddp is not None else 1,
                                 "from_step": 0, "epoch": 0}]
        self.meta_base = self._meta_base()
        self.last_save_t = time.monotonic()

    def _meta_base(self) -> dict[str, Any]:
        """What every checkpoint of this run says about it, besides its counters."""
        cfg, data = self.cfg, self.data
        meta = {
            "model": cfg.model, "model_args": getattr(self.model, "model_args", {}),
            "class_names": self.classes, "data": cfg.data or data.name,
            "data_source": data.source, "input_size": list(self.input_size),
            "image_size": list(data.image_size), "mean": list(data.mean),
            "std": list(data.std), "recipe": cfg.recipe, "config": cfg.to_dict(),
            "cpu_threads": torch.get_num_threads() if self.device.type == "cpu" else None,
            "device_type": self.device.type, "amp": amp_name(self.amp),
            "selection": self.validation.meta(),
            "world_size": self.ddp.world_size if self.ddp is not None else 1,
            "world_sizes": self.world_sizes,
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
                if self._stopping():
                    break
                if cfg.stop_after is not None and epoch - self.start_epoch >= cfg.stop_after:
                    self.status = "stopped"
                    break
                tr = self.train_epoch(epoch)
                if tr is None:  # stopped inside the epoch, `last` saved there
                    self._stopping()
                    break
                self.end_epoch(tr)
            else:
                self._stopping()  # a signal during the last epoch's evaluation
        except TrainingDiverged as e:
            self.status = "diverged"
            where = (f"the last good checkpoint is {self.out / 'last'} (epoch {self.saved[0]}, "
                     f"step {self.saved[1]})" if self.saved is not None
                     else "no checkpoint had been written yet")
            self.message = f"{e}; stopped: {where}"
        except KeyboardInterrupt:  # without our handlers (not the main thread, say)
            self.status = "interrupted"
            self.stop.request()
            self.message = (f"interrupted in epoch {state.epoch + 1}; resume with "
                            f"`convzoo train --resume {self.out}` (from its last checkpoint)")

    def _stopping(self) -> bool:
        """Whether a signal or `stop_at_step` ended the run (between epochs: `last` is saved)."""
        if self.stop_at_step is not None and self.state.step >= self.stop_at_step:
            self.status = "stopped"
            return True
        # under DDP every process stops at the same place, so they decide together
        signalled = self._agree(False)[0] if self.ddp is not None else self.stop.requested
        if signalled:
            self.status = "interrupted"
            self.message = (f"stopped by {signal_name(self.stop.signum or 2)} at step "
                            f"{self.state.step}; saved in {self.out / 'last'}: continue with "
                            f"`convzoo train --resume {self.out}`")
            return True
        return False

    def _agree(self, time_due: bool) -> tuple[bool, bool]:
        """Under DDP: (any process got a signal, any found a timed save due), the same answer
        on every process, which then acts on it. Collective."""
        import torch.distributed as dist

        t = torch.tensor([self.stop.signum or 0, int(time_due)], dtype=torch.long,
                         device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        if int(t[0]) and not self.stop.requested:
            self.stop.request(int(t[0]))
        return bool(t[0]), bool(t[1])

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

    def train_epoch(self, epoch: int) -> dict[str, float] | None:
        """One epoch's optimiser steps; `state.epoch` counts it when it is done. Returns None
        when the epoch stopped in the middle (a signal, `stop_at_step`), `last` saved there."""
        start, tally = 0, EpochTally.new(self.device)
        if self.resume_at is not None and self.resume_at[0] == epoch:
            start = self.resume_at[1]
            if self.resume_tally is not None:
                tally = EpochTally.from_state(self.resume_tally, self.device)
            self.resume_at = self.resume_tally = None
        batches = (self.first_batches if epoch == 0 and start == 0
                   else self.train_batches(epoch, start))
        stopped = []

        def on_step(i: int) -> bool:
            if self.callbacks:
                call(self.callbacks, "on_step", StepEvent(
                    epoch, i + 1, len(batches), self.state.step, tally.losses[-1],
                    self.schedule.lr))
            stop, save = self._decide(i)
            done = batches.position >= len(batches) or self._out_of_steps()
            if (stop or save) and not done:  # at the epoch's end, `end_epoch` saves
                check_finite(tally, self.state.step, i, len(batches), epoch)  # no NaN saved
                self.save_last(self._last_row(), position=(epoch, batches.position),
                               tally=tally)
            if stop and not done:
                stopped.append(i)
            return stop

        tr = train_one_epoch(self.net, batches, self.optimizer, self.schedule, self.cfg,
                             self.state, device=self.device, amp=self.amp, ema=self.ema,
                             progress=self.progress, epoch=epoch, on_step=on_step, tally=tally)
        self._log_steps(epoch, tally)
        self.train_s += tr["seconds"]
        self.images += tr["images"]
        if stopped:
            return None
        self.state.epoch = epoch + 1
        return tr

    def _decide(self, i: int) -> tuple[bool, bool]:
        """After a step: (stop the run now, save `last` now); the same on every process."""
        cfg, s = self.cfg, self.state
        at_step = self.stop_at_step is not None and s.step >= self.stop_at_step
        step_due = cfg.save_every > 0 and s.step % cfg.save_every == 0
        time_due = cfg.save_minutes > 0 and \
            time.monotonic() - self.last_save_t >= 60 * cfg.save_minutes
        signalled = self.stop.requested
        if self.ddp is not None:
            # collective every step on the CPU; on a GPU every log_every steps (a host sync)
            if self.device.type == "cpu" or (i + 1) % max(1, cfg.log_every) == 0:
                signalled, time_due = self._agree(time_due)
            else:
                signalled = time_due = False
        stop = at_step or signalled
        return stop, stop or step_due or time_due

    def _last_row(self) -> dict[str, Any]:
        return self.state.history[-1] if self.state.history else {}

    def _log_steps(self, epoch: int, tally: EpochTally) -> None:
        losses = tally.take_losses()
        if self.steplog is not None:
            self.steplog.append(self.state.step, epoch + 1, losses)
        if self.runlog is not None:  # TensorBoard, every log_every steps
            self.runlog.log_steps(self.state.step, losses, self.cfg.log_every, self.schedule.lr)

    def end_epoch(self, tr: dict[str, float]) -> None:
        """Evaluate (every `eval_every` epochs and at the end), step the schedule, log the
        epoch's row and save the checkpoints."""
        cfg, state = self.cfg, self.state
        final = state.epoch == cfg.epochs or self._out_of_steps()
        ev = None
        if final or state.epoch % max(1, cfg.eval_every) == 0:
            self._settle_batch_norms()
            ev = self.last_eval = self.run_eval(self.eval_split)
        self.schedule.after_epoch(ev.err1 if ev is not None else None)
        row = {"epoch": state.epoch, "step": state.step, "lr": tr["lr"],
               "train_loss": tr["loss"], "train_top1": tr["top1"],
               "val_loss": ev.loss if ev else None, "val_top1": ev.top1 if ev else None,
               "val_top5": top_k(ev, len(self.classes)) if ev else None,
               "epoch_s": tr["seconds"],
               "images_per_s": tr["images_per_s"]}
        # only a validation split chooses best/; a tie keeps the later (longer-trained) epoch
        is_best = ev is not None and self.eval_name == "val" and ev.top1 >= state.best_top1
        if is_best:
            state.best_top1, state.best_epoch = ev.top1, state.epoch
        if self.runlog is None:  # not rank 0: keep the history, write nothing
            state.history.append(row)
            self.save_last(row)  # only its part of the collective
            call(self.callbacks, "on_epoch_end", row)
            return
        self.runlog.log_epoch(row)  # appends to state.history
        self.save_last(row)
        if is_best:
            ck.copy_checkpoint(self.out / "last", self.out / "best")
        self.progress.line(_stats_line(state.epoch, cfg, tr, ev, self.eval_name,
                                       len(self.classes)))
        call(self.callbacks, "on_epoch_end", row)

    def save_last(self, row: dict[str, Any], position: tuple[int, int] | None = None,
                  tally: EpochTally | None = None) -> None:
        """Write the run as it stands to last/ (atomically), `row` its latest metrics;
        `position` (epoch, batches taken) and `tally` for a save inside an epoch. Every
        process calls it (under DDP the RNG states and sums are gathered); rank 0 writes."""
        s = self.state
        extra: dict[str, Any] = {}
        if position is not None and tally is not None:
            sums = tally.state()
            if self.ddp is not None:  # rank 0 keeps the sums of all processes
                t = torch.tensor([sums["loss_sum"], sums["correct"], sums["seen"]],
                                 dtype=torch.float64, device=self.device)
                dd.all_reduce_sum_(t)
                sums = {"loss_sum": float(t[0]), "correct": int(t[1]), "seen": int(t[2]),
                        "first_bad": -1}
            extra["loader"] = {"epoch": position[0], "batch": position[1]}
            extra["tally"] = sums
            self._log_steps(position[0], tally)  # steps.csv reaches the saved step first
        if self.ddp is not None:  # each process's own random stream (dropout)
            import torch.distributed as dist

            rngs: list[Any] = [None] * self.ddp.world_size
            dist.all_gather_object(rngs, ck.rng_state())
            extra["rank_rng"] = rngs
        self.saved = (s.epoch, s.step)
        self.last_save_t = time.monotonic()
        if not self.main:
            return
        meta = {**self.meta_base, "epoch": s.epoch, "step": s.step, "metrics": row,
                "best_top1": s.best_top1, "best_epoch": s.best_epoch, "history": s.history}
        ck.save_checkpoint(self.out / "last", model=self.model, meta=meta,
                           optimizer=self.optimizer, schedule=self.schedule, ema=self.ema,
                           extra_state=extra or None)

    def _settle_batch_norms(self) -> None:
        """A short run's batch-norm statistics from the training images (train/batch_norm.py),
        said once. Not under DDP or with an EMA, whose statistics come from elsewhere."""
        from . import batch_norm as bn

        if (not self.cfg.settle_bn or self.state.step >= bn.SETTLE_STEPS
                or self.ddp is not None or self.ema is not None):
            return
        norms = bn.trained_norms(self.model)
        if not norms:
            return
        batches = loader(self.train_split, self.data, self.cfg, train=False, device=self.device,
                         input_size=self.input_size, epoch=0, channels_last=self.channels_last)
        with autocast(self.device, self.amp):
            bn.recalibrate_bn(self.model, batches, norms, max_batches=bn.SETTLE_BATCHES)
        self.model.train()
        if not self.said_settle:
            self.said_settle = True
            self.progress.line(f"batch norm: {len(norms)} layers' statistics re-estimated on "
                               f"the training images before evaluating (a run of under "
                               f"{bn.SETTLE_STEPS} steps: their running averages still lag "
                               "the weights; --set settle_bn=false keeps them)")

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
            raise TrainingInterrupted(self.message, self.stop.signum or 2, self.state.step)
        return summary

    def previous_summary(self) -> dict[str, Any]:
        """What a finished run reports when resumed: its summary.json (nothing is written)."""
        try:
            old = json.loads((self.out / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        summary = old if isinstance(old, dict) else self.summary(None)
        return {**summary, "already_finished": True, "run_dir": str(self.out),
                "epochs_planned": self.cfg.epochs}

    def summary(self, test: EvalResult | None) -> dict[str, Any]:
        cfg, s = self.cfg, self.state
        out = {
            "model": cfg.model, "data": cfg.data or self.data.name, "status": self.status,
            "epochs": s.epoch, "epochs_trained": s.epoch - self.start_epoch, "steps": s.step,
            "best_epoch": s.best_epoch,
            "best_top1": s.best_top1 if s.best_epoch else None,
            "wall_s": time.perf_counter() - self.t_start, "train_s": self.train_s,
            "compile_s": self.compile_s,
            "images_per_s": self.images / self.train_s if self.train_s else None,
            "device": device_name(self.device), "amp": amp_name(self.amp),
            "channels_last": self.channels_last, "cpu_kernels": self.cpu_kernels,
            "cpu_threads": self.cpu_choice, "compile": cfg.compile,
            "recipe": cfg.recipe, "run_dir": str(self.out),
            "test": test.to_dict(self.classes) if test is not None else None,
            "history": list(s.history), "versions": ck.versions(),
            **{k: v for k, v in self.meta_base.items()
               if k in ("finetune", "selection", *self.extra_meta)},
        }
        if self.ddp is not None:
            out["processes"] = self.ddp.world_size
        out["world_sizes"] = self.world_sizes  # every process count it ran at (`elastic`)
        if self.status == "interrupted":
            out["signal"] = signal_name(self.stop.signum or 2)
            out["step"] = s.step
        if self.message:
            out["message"] = self.message
        return out
