"""`TrainConfig`: every setting of a training run, and recipes (TOML files) that fill it.

Precedence, lowest first: the dataclass defaults, a recipe's fields, command-line flags.
A recipe is a flat TOML table of `TrainConfig` fields plus `source` (the paper or page the
numbers come from) and `notes`; the package's `recipes/NAME.toml` is found by NAME, and a
path to a user's own TOML file works too.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ..errors import UserInputError
from ..sizes import parse_size

# The recipes ship inside the package (package data), so an installed wheel finds them too.
RECIPE_PACKAGE = "convzoo"


def _recipe_dir() -> Traversable:
    return resources.files(RECIPE_PACKAGE) / "recipes"


@dataclass
class TrainConfig:
    # what
    model: str = ""
    model_args: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None  # initial weights: a file or a named source ('imagenet')
    init_from: str | None = None  # checkpoint to copy matching tensors from
    init_rule: str = "auto"  # auto | match | vgg (the VGG paper's rule)
    data: str = ""
    data_dir: str | None = None
    input_size: tuple[int, int, int] | None = None  # what the model sees (default: its own;
    # channels 0: the data's)
    # fraction of each class of the training set held out for validation, on which best/ is
    # chosen (a data set's own validation split takes its place); 0: none, and no best/
    val_split: float = 0.1
    mean: list[float] | None = None  # normalisation on the 0..1 scale (default: the data's)
    std: list[float] | None = None
    # fine-tuning (`convzoo finetune`): linear | partial | full, on the named parameter groups
    finetune: str | None = None
    train_last: int = 1  # partial: how many stages before the head train
    lr_decay: float = 0.1  # each earlier group's rate is the next one's times this
    # how long
    epochs: int = 10
    max_steps: int | None = None  # stop after this many optimiser steps (iteration budgets)
    stop_after: int | None = None  # end this invocation after N epochs (resume later)
    # mid-epoch checkpoints (last/): every N optimiser steps and/or M minutes; 0: off. Ten
    # minutes by default: a long epoch loses little to a kill; a short run never pays for it.
    save_every: int = 0
    save_minutes: float = 10.0
    # optimiser
    optimizer: str = "sgd"
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    no_wd_bias_norm: bool = False  # no decay on biases and normalisation parameters
    label_smoothing: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0: off
    aux_weight: float = 0.3  # GoogLeNet: each auxiliary classifier's loss weight
    ema: float = 0.0  # parameter EMA decay per step (e.g. 0.999); 0: off
    # schedule
    schedule: str = "constant"  # constant | step | multistep | plateau | cosine | onecycle
    schedule_unit: str = "epoch"  # unit of step_size / milestones: epoch | step
    step_size: float = 30.0
    milestones: list[float] = field(default_factory=list)
    gamma: float = 0.1
    patience: int = 5  # plateau: epochs without improvement before dividing
    min_lr: float = 0.0
    warmup_epochs: float = 0.0
    warmup_start: float = 0.1  # warm-up starts at lr * warmup_start
    pct_start: float = 0.25  # one-cycle: fraction of steps spent rising
    div_factor: float = 25.0  # one-cycle: lr starts at lr / div_factor
    final_div_factor: float = 1e4
    # data handling
    augment: str | dict[str, Any] = "none"  # preset name or Augment fields
    tta_flip: bool = False  # evaluation averages the softmax of the image and its mirror
    # before evaluating, a run of fewer than 50 steps re-estimates its batch norms' statistics
    # from the training images (train/batch_norm.py): their running averages still lag
    settle_bn: bool = True
    workers: int = 0
    threads: int | None = None  # CPU threads; None: the cores free (runtime.device)
    # progressive resizing (FFCV's ImageNet runs: 160 -> 192, evaluation at the input size):
    # the training input's side rises linearly from progressive_from in the first epoch to
    # progressive_to in the last, in steps of 32 pixels; 0: off
    progressive_from: int = 0
    progressive_to: int = 0
    # execution
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | bf16 | fp32
    channels_last: bool | None = None  # None: on GPU only
    compile: bool = False
    compile_mode: str | None = None
    seed: int = 0
    out: str | None = None
    eval_every: int = 1
    log_every: int = 20  # steps between progress updates and loss checks
    plots: bool = True
    tensorboard: bool = True
    # provenance (filled in by load_recipe)
    recipe: str | None = None
    source: str | None = None

    def validate(self) -> None:
        """Settings no run can use are bad input, named before anything starts."""
        if self.threads is not None:
            from ..runtime.device import check_threads

            check_threads(self.threads)
        checks = [(self.epochs >= 1, "epochs must be at least 1"),
                  (self.batch_size >= 1, "batch_size must be at least 1"),
                  (self.lr > 0, "lr must be positive"),
                  (0 <= self.val_split < 1, "val_split is a fraction in [0, 1)"),
                  (0 <= self.label_smoothing < 1, "label_smoothing is in [0, 1)"),
                  (0 <= self.ema < 1, "ema is a decay in [0, 1), e.g. 0.999"),
                  (self.max_steps is None or self.max_steps >= 1, "max_steps must be >= 1"),
                  (self.stop_after is None or self.stop_after >= 1, "stop_after must be >= 1"),
                  (self.workers >= 0, f"workers must be 0 (load in this process) or more, "
                                      f"got {self.workers}"),
                  (self.save_every >= 0, "save_every is a number of steps, >= 0 (0: off)"),
                  (self.save_minutes >= 0, "save_minutes must be >= 0 (0: off)"),
                  ((self.progressive_from > 0) == (self.progressive_to > 0)
                   and self.progressive_from >= 0 and self.progressive_to >= 0,
                   "progressive resizing needs both progressive_from and progressive_to "
                   "(input sides in pixels, e.g. 160 and 192), or neither")]
        for ok, message in checks:
            if not ok:
                raise UserInputError(message)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["input_size"] is not None:
            d["input_size"] = list(d["input_size"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        # a config written before a field existed means the behaviour it had then
        return replace(cls(), {**LEGACY, **d}, what="config")


#: Fields whose default changed, with the value a saved config that lacks them meant: runs
#: from before validation splits trained on the whole training split.
LEGACY: dict[str, Any] = {"val_split": 0.0}


FIELDS = {f.name: f for f in fields(TrainConfig)}
_NOT_IN_RECIPES = {"recipe"}


def _whole(name: str, value: Any) -> int:
    """`value` as a whole number that fits 64 bits (what seeds and counts are passed as);
    1e400, 2.5 and 2**70 are refused, not overflowed, rounded or wrapped."""
    try:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise UserInputError(f"{name} takes a whole number (got {value!r})") from None
    if abs(number) >= 1 << 63:
        raise UserInputError(f"{name} is too large (got {value!r}); it must fit 64 bits")
    return number


def _coerce(name: str, value: Any) -> Any:
    """Give a TOML/JSON/CLI value the field's type where that is unambiguous."""
    default = getattr(TrainConfig(), name)
    if value is None:
        return None
    if name == "input_size":
        # 'CxHxW', 'HxW', N, or a list of 2 or 3 numbers; without C the channels stay open (0)
        # and the run takes the data's
        if isinstance(value, bool) or not isinstance(value, str | int | list | tuple):
            raise UserInputError(f"input_size takes CxHxW, HxW or N (got {value!r})")
        return parse_size(value)
    if isinstance(value, list | tuple | dict) and (
            isinstance(default, bool | int | float | str) or name in ("max_steps", "stop_after")):
        raise UserInputError(f"{name} takes one value, not {type(value).__name__} "
                             f"{repr(value)[:40]}")
    if isinstance(default, bool) or name == "channels_last":
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise UserInputError(f"{name} takes true or false (got {value!r})")
        return bool(value)
    if isinstance(default, float) and isinstance(value, int | float | str):
        try:
            number = float(value)
        except (ValueError, OverflowError):
            raise UserInputError(f"{name} takes a number (got {value!r})") from None
        if not math.isfinite(number):
            raise UserInputError(f"{name} takes a finite number (got {value!r})")
        return number
    if (isinstance(default, int) and isinstance(value, int | float | str)) or \
            name in ("max_steps", "stop_after"):
        return _whole(name, value)
    if name == "milestones":
        try:
            if isinstance(value, str) or isinstance(value, bool):
                raise TypeError
            return [float(v) for v in (value if isinstance(value, list | tuple) else [value])]
        except (TypeError, ValueError):
            raise UserInputError(f"milestones takes a list of numbers, e.g. [30, 60] "
                                 f"(got {value!r})") from None
    if name in ("mean", "std"):
        try:
            return [float(v) for v in value]
        except (TypeError, ValueError):
            raise UserInputError(f"{name} takes a list of numbers, e.g. [0.5, 0.5, 0.5]") \
                from None
    return value


def replace(cfg: TrainConfig, updates: dict[str, Any], what: str) -> TrainConfig:
    """A copy of `cfg` with `updates` applied; an unknown field is an error naming `what`."""
    out = dataclasses.replace(cfg)
    for key, value in updates.items():
        name = key.replace("-", "_")
        if name not in FIELDS:
            close = difflib.get_close_matches(name, FIELDS, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserInputError(f"{what}: unknown setting {key!r}{hint}")
        if name == "model_args":
            if not isinstance(value, dict):
                raise UserInputError(f"{what}: model_args takes a table of the model's "
                                     f"arguments, e.g. {{dropout = 0.2}} (got {value!r})")
            value = {**out.model_args, **value}
        setattr(out, name, _coerce(name, value))
    return out


def recipe_names() -> list[str]:
    """The names of the recipes shipped with convzoo."""
    d = _recipe_dir()
    if not d.is_dir():
        return []
    return sorted(p.name.removesuffix(".toml") for p in d.iterdir()
                  if p.name.endswith(".toml") and p.is_file())


def find_recipe(name_or_path: str) -> Path | Traversable:
    """A user's TOML file (a path, or anything ending in .toml), else a shipped recipe by name."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise UserInputError(f"recipe file {p} does not exist")
        return p
    # A name is one file name, never a path into (or out of) the package.
    if name_or_path and "/" not in name_or_path and "\\" not in name_or_path:
        cand = _recipe_dir() / f"{name_or_path}.toml"
        if cand.is_file():
            return cand
    names = recipe_names()
    close = difflib.get_close_matches(name_or_path, names, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UserInputError(f"unknown recipe {name_or_path!r}: {hint}known: {', '.join(names)}")


def read_recipe(name_or_path: str) -> dict[str, Any]:
    """The recipe's table, checked: every key a TrainConfig field (or source/notes)."""
    path = find_recipe(name_or_path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserInputError(f"recipe {path} is not valid TOML: {e}") from None
    if "source" not in table:
        raise UserInputError(f"recipe {path} does not cite its source (add source = \"...\")")
    table.pop("notes", None)
    bad = _NOT_IN_RECIPES & set(table)
    if bad:
        raise UserInputError(f"recipe {path}: {sorted(bad)[0]!r} cannot be set by a recipe")
    table["recipe"] = path.name.removesuffix(".toml")
    return table


def load_recipe(name_or_path: str, base: TrainConfig | None = None) -> TrainConfig:
    return replace(base or TrainConfig(), read_recipe(name_or_path), f"recipe {name_or_path}")


def parse_override(text: str) -> tuple[str, Any]:
    """'key=value' with a TOML value ('lr=0.05', 'milestones=[30,60]'); bare words are strings."""
    if "=" not in text:
        raise UserInputError(f"--set takes KEY=VALUE (got {text!r})")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value
