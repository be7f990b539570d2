"""Training proper: a typed config and recipes, `fit` and the run it drives, epochs, schedules,
freezing and fine-tuning preparation, callbacks. Checkpoints live in `runs`, scoring in
`evaluation`, the device and processes in `runtime`."""

from ..runs.checkpoint import Checkpoint, load_checkpoint, model_from_checkpoint, save_checkpoint
from .config import TrainConfig, load_recipe, recipe_names
from .init_from import init_from
from .loop import EvalResult, TrainingDiverged, evaluate, fit, train_one_epoch
from .schedules import OPTIMIZERS, SCHEDULES, Schedule, make_optimizer

__all__ = [
    "OPTIMIZERS", "SCHEDULES", "Checkpoint", "EvalResult", "Schedule", "TrainConfig",
    "TrainingDiverged", "evaluate", "fit", "init_from", "load_checkpoint", "load_recipe",
    "make_optimizer", "model_from_checkpoint", "recipe_names", "save_checkpoint",
    "train_one_epoch",
]
