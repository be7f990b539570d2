"""`convzoo finetune`, `convzoo features` and `convzoo experiment transfer`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import UserInputError
from .common import emit, formatter, size_arg
from .train import _FIELD_FLAGS

_SKIP = {"--weights", "--init-from"}  # finetune has its own --weights; init-from is train's


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
    p.add_argument("source", nargs="?", metavar="SOURCE",
                   help="a run directory or checkpoint, or a model name with --weights")
    p.add_argument("--weights", metavar="W", help="for a model name: a torchvision .pth, a timm "
                   "state_dict, a .safetensors file, or 'imagenet' (EfficientNet-Lite0)")
    p.add_argument("--mode", choices=("linear", "partial", "full"), default="linear",
                   help="linear: only the new last layer; partial: it and the last N stages; "
                        "full: everything")
    p.add_argument("--train-last", type=int, default=1, metavar="N",
                   help="partial: stages before the head that train (default 1)")
    p.add_argument("--lr-decay", type=float, default=0.1, metavar="D",
                   help="each earlier group's rate is the next one's times D (default 0.1)")
    for flag, kw in _FIELD_FLAGS:
        if flag not in _SKIP:
            p.add_argument(flag, default=argparse.SUPPRESS, **kw)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a fine-tuning run")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser(
        "features", help="pooled features and labels from any layer, to a safetensors file",
        **formatter("examples:\n"
                    "  convzoo features efficientnet_lite0 --weights imagenet --data lfw "
                    "--out lfw.safetensors\n"
                    "  convzoo features runs/x --data fashion-mnist --layer stage2 --random "
                    "--out random.safetensors"))
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--weights", metavar="W")
    p.add_argument("--data", required=True, metavar="NAME")
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--layer", metavar="NAME", help="a group (stem, stage2, ...) or a module "
                   "name; default: the head's input")
    p.add_argument("--random", action="store_true",
                   help="the same architecture with random weights (the baseline)")
    p.add_argument("--split", choices=("train", "test", "both"), default="both")
    p.add_argument("--input", type=size_arg, metavar="CxHxW",
                   help="input size (default: what the weights expect)")
    p.add_argument("--batch-size", type=int, default=128, metavar="N")
    p.add_argument("--device", default="auto", metavar="cpu|cuda|auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="FILE")
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("experiment", help="the lectures' experiments")
    kinds = p.add_subparsers(dest="experiment", metavar="NAME", required=True)
    q = kinds.add_parser(
        "transfer", help="pretrained vs random features, fine-tuning vs scratch",
        **formatter("example:\n  convzoo experiment transfer efficientnet_lite0 --weights "
                    "imagenet --data fashion-mnist --labels-per-class 10,100 --input 3x96x96"))
    q.add_argument("source", metavar="SOURCE")
    q.add_argument("--weights", metavar="W")
    q.add_argument("--data", required=True, metavar="NAME")
    q.add_argument("--data-dir", metavar="DIR")
    q.add_argument("--labels-per-class", default="10,100,1000", metavar="K,K,...")
    q.add_argument("--methods", default="probe_pretrained,probe_random,partial,scratch",
                   metavar="M,M,...")
    q.add_argument("--epochs", type=int, default=5, metavar="N",
                   help="budget of partial fine-tuning and of training from scratch")
    q.add_argument("--lr", type=float, default=0.01, metavar="X")
    q.add_argument("--train-last", type=int, default=1, metavar="N")
    q.add_argument("--batch-size", type=int, default=64, metavar="N")
    q.add_argument("--input", type=size_arg, metavar="CxHxW",
                   help="input size (default: what the weights expect)")
    q.add_argument("--test-limit", type=int, metavar="N", help="score on N test images")
    q.add_argument("--device", default="auto", metavar="cpu|cuda|auto")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", default="runs/transfer", metavar="DIR")
    q.set_defaults(func=cmd_experiment)

    from .experiments import add_experiments

    add_experiments(kinds)


def cmd_finetune(args: argparse.Namespace) -> int:
    from ..data.augment import adaptation
    from ..data.catalog import load_dataset
    from ..train import transfer
    from ..train.checkpoint import load_checkpoint
    from ..train.config import TrainConfig, replace
    from ..train.finetune import load_source, new_head
    from ..train.loop import fit
    from ..train.progress import Progress

    given = {flag.lstrip("-").replace("-", "_") for flag, _ in _FIELD_FLAGS}
    flags = {k: v for k, v in vars(args).items() if k in given}
    progress = Progress(enabled=not args.quiet)
    if args.resume:
        cfg = TrainConfig.from_dict(load_checkpoint(args.resume, prefer="last").meta["config"])
        if not cfg.finetune:
            raise UserInputError(f"{args.resume} is not a fine-tuning run; use convzoo train "
                                 "--resume")
        flags.pop("out", None)
        cfg = replace(cfg, {"stop_after": None, **flags}, "flags")
        summary = fit(cfg, resume=args.resume, progress=progress)
        return _report(summary)
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
    data = load_dataset(cfg.data, cfg.data_dir, seed=cfg.seed)
    model = src.model
    head_note = new_head(model, list(data.classes), src.class_names)
    size = cfg.input_size or src.input_size or tuple(model.default_input_size)
    cfg = replace(cfg, {
        "model": model.model_name, "model_args": dict(model.model_args),
        "weights": args.weights, "finetune": args.mode, "train_last": args.train_last,
        "lr_decay": args.lr_decay, "input_size": size,
        "mean": list(src.mean) if src.mean and cfg.mean is None else cfg.mean,
        "std": list(src.std) if src.std and cfg.std is None else cfg.std,
    }, "finetune")
    progress.line(f"fine-tuning {src.description} on {data.describe()}")
    for line in adaptation(data.image_size, size):
        progress.line(f"input: {line}")
    if src.mean:
        progress.line("input: normalised with the statistics the weights were trained with")
    if head_note:
        progress.line(head_note)
    plans = transfer.plan(model, args.mode, cfg.lr, args.train_last, args.lr_decay)
    emit(transfer.plan_table(plans).render("table"))
    summary = fit(cfg, data=data, model=model, progress=progress,
                  extra_meta={"source": src.description})
    return _report(summary)


def _report(summary: dict) -> int:
    test = summary.get("test")
    if test:
        emit(f"{summary['model']} fine-tuned on {summary['data']}: test top-1 accuracy "
             f"{test['top1']:.4f}, top-5 {test['top5']:.4f}; {summary['epochs']} epochs in "
             f"{summary['wall_s']:.1f} s")
    emit(f"run files: {summary['run_dir']} (summary.json, metrics.csv, last/, best/)")
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    import torch
    from safetensors.torch import save_file

    from ..data.catalog import load_dataset
    from ..data.loader import make_loader
    from ..registry import create_model
    from ..train.features import extract
    from ..train.finetune import load_source
    from ..train.loop import resolve_device

    src = load_source(args.source, args.weights)
    model = src.model
    if args.random:
        torch.manual_seed(args.seed)
        model = create_model(model.model_name, **model.model_args)
    data = load_dataset(args.data, args.data_dir, seed=args.seed)
    dev = resolve_device(args.device)
    model.to(dev)
    size = args.input or src.input_size or tuple(model.default_input_size)
    if size[0] == 0:
        size = (model.default_input_size[0], size[1], size[2])
    mean, std = src.mean or data.mean, src.std or data.std
    tensors: dict[str, torch.Tensor] = {}
    splits = ("train", "test") if args.split == "both" else (args.split,)
    for split in splits:
        batches = make_loader(getattr(data, split), batch_size=args.batch_size, train=False,
                              device=dev, input_size=size, mean=mean, std=std, augment=None,
                              seed=args.seed, epoch=0)
        x, y = extract(model, batches, args.layer)
        tensors[f"{split}_features"], tensors[f"{split}_labels"] = x.contiguous(), y
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"source": src.description, "random": str(args.random), "layer": args.layer or
            "head input", "data": data.name, "classes": json.dumps(list(data.classes)),
            "input_size": "x".join(map(str, size))}
    tmp = out.with_name(out.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(out)
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items())
    emit(f"{out}: {shapes} ({'random' if args.random else 'source'} weights, layer "
         f"{meta['layer']})")
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from ..data.catalog import load_dataset
    from ..experiments.transfer import result_table, run_transfer

    try:
        counts = [int(k) for k in args.labels_per_class.split(",") if k.strip()]
    except ValueError:
        raise UserInputError(f"--labels-per-class takes numbers like 10,100,1000, not "
                             f"{args.labels_per_class!r}") from None
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    data = load_dataset(args.data, args.data_dir, seed=args.seed)
    size = args.input
    result = run_transfer(args.source, data, counts, Path(args.out), weights=args.weights,
                          epochs=args.epochs, lr=args.lr, train_last=args.train_last,
                          batch_size=args.batch_size, device=args.device, seed=args.seed,
                          test_limit=args.test_limit, input_size=size, methods=methods,
                          log=emit)
    emit(result_table(result).render("table"))
    emit(f"written: {args.out}/transfer.json, .csv, .md, .png")
    return 0
