"""`convzoo train MODEL`: train a model on a data set; recipes, flags, `--set`, `--resume`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UserInputError
from .common import add_field_flags, emit, field_values, formatter

# Switches that set a TrainConfig field of their own name.
SWITCHES = ("nesterov", "compile", "tta_flip")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model on a data set (recipes, checkpoints, resume)",
        **formatter("examples:\n"
                    "  convzoo train lenet5 --data fashion-mnist --epochs 5 --device cpu\n"
                    "  convzoo train resnet20 --recipe resnet_cifar --data cifar10\n"
                    "  convzoo train --resume runs/resnet20-cifar10-20250101-120000\n"
                    "  torchrun --nproc_per_node=8 -m convzoo train resnet50 "
                    "--recipe resnet_imagenet --data imagefolder:/data/imagenet\n"
                    "    (DDP, one process per GPU; --batch-size is per process)\n"
                    "  convzoo train resnet_fmnist --recipe fashion_mnist --set lr=0.3"))
    p.add_argument("model", nargs="?", help="registered model name (see `convzoo list`)")
    p.add_argument("--recipe", metavar="FILE|NAME",
                   help="a TOML recipe, e.g. resnet_cifar (recipes/); flags override it")
    add_field_flags(p)
    p.add_argument("--nesterov", action="store_true", default=argparse.SUPPRESS)
    p.add_argument("--compile", action="store_true", default=argparse.SUPPRESS,
                   help="torch.compile the model (compile time is reported apart)")
    p.add_argument("--tta-flip", action="store_true", default=argparse.SUPPRESS,
                   help="evaluate on each image and its mirror")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config field, value in TOML syntax (milestones=[30,60])")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: the cores free, "
                   "from the load average)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_train)


def config_from_args(args: argparse.Namespace) -> tuple[Any, str | None]:
    """(TrainConfig, run directory to resume or None): defaults < checkpoint/recipe < flags."""
    from ..train.checkpoint import load_checkpoint
    from ..train.config import TrainConfig, load_recipe, parse_override, replace

    flags = field_values(args, SWITCHES)
    cfg = TrainConfig()
    if args.resume:
        ckpt = load_checkpoint(args.resume, prefer="last")
        cfg = TrainConfig.from_dict(ckpt.meta["config"])
        if args.model and args.model != cfg.model:
            raise UserInputError(f"{args.resume} is a run of {cfg.model}, not {args.model}")
        out = flags.pop("out", None)
        run_dir = ckpt.path.parent
        if out is not None and Path(out).resolve() != run_dir.resolve():
            raise UserInputError(f"--resume {args.resume} continues in {run_dir}; leave out "
                                 f"--out {out} (or copy the run there first)")
        cfg.stop_after = None  # the stop of the last invocation, not of this one
    elif args.recipe:
        cfg = load_recipe(args.recipe)
    if args.model:
        cfg.model = args.model
    cfg = replace(cfg, flags, "flags")
    cfg = replace(cfg, dict(parse_override(s) for s in args.set), "--set")
    if not args.resume:
        if not cfg.model:
            raise UserInputError("which model? e.g. convzoo train lenet5 --data fashion-mnist "
                                 "(`convzoo list` shows them)")
        from ..registry import get_entry

        get_entry(cfg.model)
        if not cfg.data:
            raise UserInputError("which data set? add --data NAME, e.g. --data fashion-mnist")
    return cfg, args.resume


def cmd_train(args: argparse.Namespace) -> int:
    from ..train.distributed import is_main
    from ..train.loop import fit
    from ..train.progress import Progress

    cfg, resume = config_from_args(args)
    if args.threads:
        from ..train.device import set_threads

        set_threads(args.threads)  # kept: the run does not choose its own count then
    summary = fit(cfg, resume=resume, progress=Progress(enabled=not args.quiet))
    if not is_main():  # under torchrun, rank 0 reports for all
        return 0
    if summary.get("already_finished"):
        emit(f"{summary['run_dir']} has finished ({summary.get('epochs')} of {cfg.epochs} epochs, "
             f"{summary.get('steps')} steps); nothing to do (raise --epochs to train longer)")
        return 0
    test = summary.get("test")
    if test:
        emit(f"{cfg.model} on {summary['data']}: test top-1 accuracy {test['top1']:.4f} "
             f"(error {test['err1']:.4f}), top-5 accuracy {test['top5']:.4f}; "
             f"{summary['epochs']} epochs in {summary['wall_s']:.1f} s")
    elif summary["status"] == "stopped":
        emit(f"stopped after epoch {summary['epochs']}; continue with "
             f"`convzoo train --resume {summary['run_dir']}`")
    emit(f"run files: {summary['run_dir']} (summary.json, metrics.csv, last/, best/)")
    return 0
