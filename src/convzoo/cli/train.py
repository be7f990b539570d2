"""`convzoo train` and `convzoo eval`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import UserInputError
from .common import emit, formatter

# flag -> TrainConfig field, for the flags that override a recipe's fields one to one
_FIELD_FLAGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--data", {"metavar": "NAME", "help": "data set: fashion-mnist, cifar10, mnist5k, "
                "imagefolder:PATH, fake:CxHxW:N:K, ..."}),
    ("--data-dir", {"metavar": "DIR", "help": "look for the data set's files here first"}),
    ("--epochs", {"type": int, "metavar": "N"}),
    ("--batch-size", {"type": int, "metavar": "N"}),
    ("--lr", {"type": float, "metavar": "X", "help": "learning rate (peak rate for one-cycle)"}),
    ("--momentum", {"type": float, "metavar": "X"}),
    ("--weight-decay", {"type": float, "metavar": "X"}),
    ("--optimizer", {"metavar": "NAME", "help": "sgd (default), adam, adamw, rmsprop"}),
    ("--schedule", {"metavar": "NAME",
                    "help": "constant, step, multistep, plateau, cosine, onecycle"}),
    ("--warmup-epochs", {"type": float, "metavar": "X"}),
    ("--label-smoothing", {"type": float, "metavar": "X"}),
    ("--grad-clip", {"type": float, "metavar": "X", "help": "max gradient norm"}),
    ("--ema", {"type": float, "metavar": "DECAY", "help": "parameter EMA, e.g. 0.999"}),
    ("--augment", {"metavar": "PRESET", "help": "none, flip, crop, cifar, shift_flip, imagenet"}),
    ("--device", {"metavar": "cpu|cuda|auto"}),
    ("--amp", {"metavar": "auto|bf16|fp32"}),
    ("--out", {"metavar": "DIR", "help": "run directory (default runs/MODEL-DATA-TIME)"}),
    ("--seed", {"type": int, "metavar": "N"}),
    ("--workers", {"type": int, "metavar": "N", "help": "loader processes for image folders"}),
    ("--init-from", {"metavar": "CHECKPOINT", "help": "copy matching tensors from a trained "
                     "run (VGG: the paper's rule when the source is A)"}),
    ("--weights", {"metavar": "SOURCE", "help": "start from these weights (file or 'imagenet')"}),
    ("--max-steps", {"type": int, "metavar": "N", "help": "stop after N optimiser steps"}),
    ("--stop-after", {"type": int, "metavar": "N",
                      "help": "end this invocation after N epochs (continue with --resume)"}),
    ("--val-split", {"type": float, "metavar": "F",
                     "help": "hold out this fraction of the training set for validation"}),
)


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
    for flag, kw in _FIELD_FLAGS:
        p.add_argument(flag, default=argparse.SUPPRESS, **kw)
    p.add_argument("--nesterov", action="store_true", default=argparse.SUPPRESS)
    p.add_argument("--compile", action="store_true", default=argparse.SUPPRESS,
                   help="torch.compile the model (compile time is reported apart)")
    p.add_argument("--tta-flip", action="store_true", default=argparse.SUPPRESS,
                   help="evaluate on each image and its mirror")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config field, value in TOML syntax (milestones=[30,60])")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "eval", help="top-1/top-5, per-class accuracy and a confusion matrix of a trained run",
        **formatter("examples:\n  convzoo eval runs/lenet5-fashion-mnist-20250101-120000\n"
                    "  convzoo eval runs/x/best --data mnist --format json"))
    p.add_argument("source", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("--data", metavar="NAME", help="data set (default: the one it trained on)")
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--which", choices=("best", "last"), default="best",
                   help="which checkpoint of a run directory")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--device", default="auto", metavar="cpu|cuda|auto")
    p.add_argument("--batch-size", type=int, default=256, metavar="N")
    p.add_argument("--tta-flip", action="store_true", help="average each image and its mirror")
    p.add_argument("--no-ema", action="store_true", help="the raw weights, not the EMA")
    p.add_argument("--out", metavar="DIR", help="where the confusion-matrix PNG goes "
                   "(default: an eval/ folder beside the checkpoint)")
    p.set_defaults(func=cmd_eval)


def config_from_args(args: argparse.Namespace) -> tuple[Any, str | None]:
    """(TrainConfig, run directory to resume or None): defaults < checkpoint/recipe < flags."""
    from ..train.checkpoint import load_checkpoint
    from ..train.config import TrainConfig, load_recipe, parse_override, replace

    given = {flag.lstrip("-").replace("-", "_") for flag, _ in _FIELD_FLAGS}
    given |= {"nesterov", "compile", "tta_flip"}
    flags = {k: v for k, v in vars(args).items() if k in given}
    cfg = TrainConfig()
    if args.resume:
        ckpt = load_checkpoint(args.resume, prefer="last")
        cfg = TrainConfig.from_dict(ckpt.meta["config"])
        if args.model and args.model != cfg.model:
            raise UserInputError(f"{args.resume} is a run of {cfg.model}, not {args.model}")
        flags.pop("out", None)
        flags.pop("stop_after", None)
        cfg.stop_after = None
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
    import torch

    from ..train.distributed import is_main
    from ..train.loop import fit
    from ..train.progress import Progress

    cfg, resume = config_from_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    summary = fit(cfg, resume=resume, progress=Progress(enabled=not args.quiet))
    if not is_main():  # under torchrun, rank 0 reports for all
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


# ---- eval ----------------------------------------------------------------------------------

def _norm(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


def match_classes(model_names: list[str], data_names: list[str]) -> tuple[list[int], list[int]]:
    """(data labels kept, the model's class index for each): classes are matched by name."""
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


def restrict(split: Any, keep: list[int]) -> Any:
    """The split with only the labels in `keep`, relabelled 0..len(keep)-1 in that order."""
    import torch

    from ..data.catalog import ArraySplit, FolderSplit

    new = {old: i for i, old in enumerate(keep)}
    if isinstance(split, ArraySplit):
        lut = torch.full((int(split.labels.max()) + 1,), -1, dtype=torch.long)
        for old, i in new.items():
            if old < lut.numel():
                lut[old] = i
        mapped = lut[split.labels]
        sel = mapped >= 0
        return ArraySplit(split.images[sel].contiguous(), mapped[sel])
    return FolderSplit([(p, new[y]) for p, y in split.samples if y in new])


def evaluate_checkpoint(source: str, *, data: str | None = None, data_dir: str | None = None,
                        split: str = "test", which: str = "best", device: str = "auto",
                        batch_size: int = 256, tta_flip: bool = False, ema: bool = True,
                        out: str | None = None) -> dict[str, Any]:
    import torch

    from ..data.catalog import load_dataset
    from ..data.loader import make_loader
    from ..train.checkpoint import load_checkpoint, model_from_checkpoint
    from ..train.loop import evaluate, resolve_amp, resolve_device
    from ..train.metrics import plot_confusion

    ckpt = load_checkpoint(source, prefer=which)
    meta = ckpt.meta
    name = data or meta.get("data")
    if not name:
        raise UserInputError("which data set? add --data NAME")
    dev = resolve_device(device)
    cfg = meta.get("config", {})
    ds = load_dataset(name, data_dir or (cfg.get("data_dir") if not data else None),
                      seed=cfg.get("seed", 0))
    model_names = ckpt.class_names or [str(i) for i in range(len(ds.classes))]
    the_split = ds.test if split == "test" else ds.train
    if [_norm(n) for n in model_names] == [_norm(n) for n in ds.classes]:
        names, index, note = list(ds.classes), None, None
    else:
        keep, to_model = match_classes(model_names, list(ds.classes))
        the_split = restrict(the_split, keep)
        names = [ds.classes[k] for k in keep]
        index = torch.tensor(to_model)
        note = (f"classes matched by name: {len(keep)} of the data's {len(ds.classes)} and "
                f"the model's {len(model_names)}")
    model = model_from_checkpoint(ckpt, ema=ema, device=dev)
    amp = resolve_amp(cfg.get("amp", "auto"), dev)
    input_size = tuple(meta.get("input_size") or model.default_input_size)
    mean, std = meta.get("mean", ds.mean), meta.get("std", ds.std)
    batches = make_loader(the_split, batch_size=batch_size, train=False, device=dev,
                          input_size=input_size, mean=mean, std=std, augment=None, seed=0,
                          epoch=0)
    res = evaluate(model, batches, len(names), device=dev, amp=amp,
                   tta_flip=tta_flip or bool(cfg.get("tta_flip")), logit_index=index)
    out_dir = Path(out) if out else ckpt.path.parent / "eval"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    png = plot_confusion(res.confusion, names, out_dir / f"confusion-{safe}-{split}.png",
                         f"{meta.get('model')} on {name} ({split}): top-1 {res.top1:.4f}")
    result = {"model": meta.get("model"), "checkpoint": str(ckpt.path), "data": name,
              "split": split, **res.to_dict(names),
              "per_class_n": dict(zip(names, res.confusion.sum(1).tolist())),
              "confusion_png": str(png) if png else None}
    if note:
        result["note"] = note
    return result


def cmd_eval(args: argparse.Namespace) -> int:
    from ..tables import Table

    r = evaluate_checkpoint(args.source, data=args.data, data_dir=args.data_dir,
                            split=args.split, which=args.which, device=args.device,
                            batch_size=args.batch_size, tta_flip=args.tta_flip,
                            ema=not args.no_ema, out=args.out)
    if args.format == "json":
        emit(json.dumps(r))
        return 0
    rows = [[n, f"{r['per_class_n'][n]:,}", f"{acc:.4f}", f"{1 - acc:.4f}"]
            for n, acc in r["per_class"].items()]
    notes = [f"top-1 accuracy {r['top1']:.4f} (error {r['err1']:.4f}); top-{r['top5_k']} "
             f"accuracy {r['top5']:.4f} (error {r['err5']:.4f}); loss {r['loss']:.4f}"]
    if r.get("note"):
        notes.append(r["note"])
    if r["confusion_png"]:
        notes.append(f"confusion matrix: {r['confusion_png']}")
    notes.insert(0, f"{r['n']:,} {r['split']} images; checkpoint {r['checkpoint']}")
    emit(Table(f"{r['model']} on {r['data']}", ["class", "images", "accuracy", "error"],
               rows, notes, align_right={1, 2, 3}).render("table"))
    return 0
