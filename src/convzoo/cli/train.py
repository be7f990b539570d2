"""`convzoo train MODEL`: train a model on a data set; recipes, flags, `--set`, `--resume`."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import UserInputError
from .common import (
    add_field_flags,
    emit,
    field_values,
    formatter,
    plural,
    topk_text,
    trained_text,
)

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
                   help="a recipe by name (e.g. resnet_cifar: the package's recipes/) or a TOML "
                   "file; without it, the model's own defaults; 'none': the generic defaults; "
                   "flags override it")
    p.add_argument("--no-report", dest="report", action="store_false",
                   help="do not write report.html at the end")
    add_field_flags(p)
    p.add_argument("--nesterov", action="store_true", default=argparse.SUPPRESS)
    p.add_argument("--compile", action="store_true", default=argparse.SUPPRESS,
                   help="torch.compile the model (compile time is reported apart)")
    p.add_argument("--tta-flip", action="store_true", default=argparse.SUPPRESS,
                   help="evaluate on each image and its mirror")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config field, value in TOML syntax (milestones=[30,60])")
    p.add_argument("--threads", type=int, metavar="N", default=argparse.SUPPRESS,
                   help="CPU threads (default: the cores free, from the load average)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--download", action="store_true",
                   help="fetch the data set's files first if they are missing (mnist, "
                   "fashion-mnist, cifar10, cifar100: their public URLs; needs a network)")
    p.set_defaults(func=cmd_train)


def config_from_args(args: argparse.Namespace) -> tuple[Any, dict[str, Any], dict[str, str], str]:
    """(TrainConfig or None for a resumed run, the settings the flags change, where each value
    came from, a note naming the settings taken): defaults < model defaults or recipe < flags
    < --set. A resumed run's config is rebuilt by `fit` from its checkpoint (`train.resume`),
    the flags and --set pairs applied there."""
    from ..train.config import parse_override
    from ..train.defaults import resolve_config

    flags = field_values(args, (*SWITCHES, "threads"))
    overrides = dict(parse_override(s) for s in args.set)
    if args.resume:
        if args.recipe:
            raise UserInputError(f"--resume {args.resume} keeps the run's own settings; leave "
                                 f"out --recipe {args.recipe}")
        named = {"model": args.model} if args.model else {}  # refused if the run is of another
        return None, {**named, **flags, **overrides}, {}, ""
    if args.model:
        from ..registry import get_entry

        get_entry(args.model)  # an unknown name is named before its defaults are looked up
    r = resolve_config(args.model, args.recipe, flags, overrides)
    cfg = r.config
    if not cfg.model:
        raise UserInputError("which model? e.g. convzoo train lenet5 --data fashion-mnist "
                             "(`convzoo list` shows them)")
    from ..registry import get_entry

    get_entry(cfg.model)
    if not cfg.data:
        raise UserInputError("which data set? add --data NAME, e.g. --data fashion-mnist")
    return cfg, {}, r.sources, r.note


def write_report(summary: dict[str, Any], device: str = "cpu") -> None:
    """The run's HTML report beside its files; a run that cannot be reported says why."""
    from ..errors import ConvzooError
    from ..report import build_report
    from ..runtime.distributed import is_main

    if not is_main():  # under torchrun, rank 0 writes the run's files
        return
    try:
        path = build_report(summary["run_dir"], device=device)
    except (ConvzooError, OSError) as e:
        emit(f"no report: {' '.join(str(e).split())}")
        return
    emit(f"report: {path}")


def cmd_train(args: argparse.Namespace) -> int:
    from ..runtime.distributed import is_main
    from ..runtime.progress import Progress
    from ..train.loop import fit

    cfg, changes, sources, note = config_from_args(args)
    if is_main() and not args.quiet and note:
        emit(note)
    if args.download and is_main() and cfg is not None:  # files first; the run reads them
        from ..data.catalog import load_dataset

        load_dataset(cfg.data, cfg.data_dir, download=True, seed=cfg.seed)
    progress = Progress(enabled=not args.quiet)
    if cfg is None:  # fit rebuilds the run's config from its checkpoint, the flags applied
        summary = fit(resume=args.resume, changes=changes, progress=progress)
    else:
        summary = fit(cfg, progress=progress, extra_meta={"config_sources": sources})
    if not is_main():  # under torchrun, rank 0 reports for all
        return 0
    if summary.get("already_finished"):
        emit(f"{summary['run_dir']} has finished ({summary.get('epochs')} of "
             f"{plural(summary.get('epochs_planned') or 0, 'epoch')}, "
             f"{plural(summary.get('steps') or 0, 'step')}); nothing to do (raise --epochs to "
             "train longer)")
        return 0
    test = summary.get("test")
    if test:
        emit(f"{summary['model']} on {summary['data']}: test top-1 accuracy {test['top1']:.4f} "
             f"(error {test['err1']:.4f}){topk_text(test)}; {trained_text(summary)}")
    elif summary["status"] == "stopped":
        emit(f"stopped after epoch {summary['epochs']}; continue with "
             f"`convzoo train --resume {summary['run_dir']}`")
    emit(f"run files: {summary['run_dir']} (summary.json, metrics.csv, last/, best/)")
    if args.report and summary.get("status") in ("completed", "stopped"):
        from ..runtime.signals import StopOnSignal, signal_name

        with StopOnSignal() as stop:  # a preemption now: the report is finished first
            write_report(summary, "cuda" if str(summary.get("device", "")).startswith("cuda")
                         else "cpu")
        if stop.signum is not None:
            emit(f"{signal_name(stop.signum)} received while writing the report: report "
                 f"finished, the run had {summary['status']}")
            return 128 + stop.signum
    return 0
