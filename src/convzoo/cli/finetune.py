"""`convzoo finetune SOURCE --data NAME`: transfer learning from a trained run or pretrained
weights: a new head, then linear, partial or full training."""

from __future__ import annotations

import argparse

from ..errors import UserInputError
from .common import SOURCE_HELP, add_field_flags, emit, field_values, formatter

# finetune has its own --weights (the source's); --init-from is train's
SKIPPED_FIELD_FLAGS = ("--weights", "--init-from")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune", help="transfer learning: a new head, then linear, partial or full training",
        **formatter("examples:\n"
                    "  convzoo finetune efficientnet_lite0 --weights imagenet --data lfw "
                    "--mode linear\n"
                    "  convzoo finetune runs/lenet5_modern-mnist --data fashion-mnist "
                    "--mode partial --train-last 1 --lr-decay 0.1\n"
                    "  convzoo finetune resnet50 --weights resnet50.pth --data imagefolder:pets "
                    "--mode full"))
    p.add_argument("source", nargs="?", metavar="SOURCE", help=SOURCE_HELP)
    p.add_argument("--weights", metavar="W", help="for a model name: a torchvision .pth, a timm "
                   "state_dict, a .safetensors file, or 'imagenet' (EfficientNet-Lite0)")
    p.add_argument("--mode", choices=("linear", "partial", "full"), default="linear",
                   help="linear: only the new last layer; partial: it and the last N stages; "
                        "full: everything")
    p.add_argument("--train-last", type=int, default=1, metavar="N",
                   help="partial: stages before the head that train (default 1)")
    p.add_argument("--lr-decay", type=float, default=0.1, metavar="D",
                   help="each earlier group's rate is the next one's times D (default 0.1)")
    add_field_flags(p, skip=SKIPPED_FIELD_FLAGS)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a fine-tuning run")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--download", action="store_true",
                   help="fetch the data set's files first if they are missing (mnist, "
                   "fashion-mnist, cifar10, cifar100; needs a network)")
    p.add_argument("--no-report", dest="report", action="store_false",
                   help="do not write report.html at the end")
    p.set_defaults(func=cmd_finetune)


def cmd_finetune(args: argparse.Namespace) -> int:
    from ..data.augment import adaptation
    from ..data.catalog import load_dataset
    from ..runs.source import load_source
    from ..runtime.progress import Progress
    from ..train import freeze
    from ..train.config import TrainConfig, replace
    from ..train.finetune import prepare_finetune
    from ..train.loop import fit

    flags = field_values(args)
    progress = Progress(enabled=not args.quiet)
    if args.resume:
        from ..train.resume import resumed_config

        # refused here, before anything is locked or loaded, if the run is not a fine-tuning one
        resumed_config(args.resume, flags, finetune=True)
        summary = fit(resume=args.resume, changes=flags, progress=progress)
        return _report(summary, args.report)
    if not args.source:
        raise UserInputError("what to fine-tune? give a run directory, a checkpoint, or a "
                             "model name with --weights")
    if not flags.get("data"):
        raise UserInputError("which data set? add --data NAME, e.g. --data fashion-mnist")
    cfg = replace(TrainConfig(epochs=5, lr=0.01, batch_size=64, weight_decay=1e-4,
                              schedule="cosine"), flags, "flags")
    src = load_source(args.source, args.weights)
    for note in src.notes:
        progress.line(note)
    data = load_dataset(cfg.data, cfg.data_dir, download=args.download, seed=cfg.seed)
    ft = prepare_finetune(src, list(data.classes), cfg, mode=args.mode,
                          train_last=args.train_last, lr_decay=args.lr_decay,
                          weights=args.weights)
    cfg, model = ft.config, ft.model
    progress.line(f"fine-tuning {src.description} on {data.describe()}")
    for line in adaptation(data.image_size, tuple(cfg.input_size)):
        progress.line(f"input: {line}")
    for note in ft.notes:
        progress.line(note)
    plans = freeze.plan(model, args.mode, cfg.lr, args.train_last, args.lr_decay)
    emit(freeze.plan_table(plans).render("table"))
    summary = fit(cfg, data=data, model=model, progress=progress,
                  extra_meta={"source": src.description})
    return _report(summary, args.report)


def _report(summary: dict, report: bool = True) -> int:
    test = summary.get("test")
    if test:
        from .common import topk_text, trained_text

        emit(f"{summary['model']} fine-tuned on {summary['data']}: test top-1 accuracy "
             f"{test['top1']:.4f}{topk_text(test)}; {trained_text(summary)}")
    emit(f"run files: {summary['run_dir']} (summary.json, metrics.csv, last/, best/)")
    if report and summary.get("status") in ("completed", "stopped"):
        from .train import write_report

        write_report(summary, "cuda" if str(summary.get("device", "")).startswith("cuda")
                     else "cpu")
    return 0
