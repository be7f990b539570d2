"""`convzoo eval SOURCE`: top-1/top-5, per-class accuracy and a confusion matrix of a trained
run; `--tta METHOD` compares the papers' test-time methods with the centre crop; several
SOURCEs are scored as an ensemble (the mean of their softmax outputs), each member beside it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import UserInputError
from .common import emit, formatter, output_file

EXAMPLES = """examples:
  convzoo eval runs/lenet5-fashion-mnist-20250101-120000
  convzoo eval runs/x/best --data mnist --format json
  convzoo eval runs/x --tta flip --tta ten-crop --tta multiscale:256,320,384
  convzoo eval efficientnet_lite0 --weights imagenet --data imagefolder:photos --tta ten-crop
  convzoo eval runs/seed0 runs/seed1 runs/seed2 --data fashion-mnist   (an ensemble)

test-time methods (--tta, repeatable; the centre crop is always reported first):
  flip                    the centre crop and its mirror
  ten-crop                AlexNet: four corners and the centre, and their mirrors
  multiscale:Q1,Q2,...    VGG: the image at smallest side Q (whole, for globally pooling heads)
  dense[:Q1,...]          VGG: fully connected layers as convolutions (VGG, AlexNet)"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="score a trained run: top-1/top-5, per class, test-time methods, "
                     "ensembles", **formatter(EXAMPLES))
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="a run directory or checkpoint (or a model name with --weights); "
                        "several: an ensemble")
    p.add_argument("--weights", metavar="W", help="weights for a SOURCE that is a model name "
                   "('imagenet' or a file)")
    p.add_argument("--data", metavar="NAME", help="data set (default: the one it trained on)")
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--which", choices=("best", "last"), default="best",
                   help="which checkpoint of a run directory")
    p.add_argument("--tta", action="append", metavar="METHOD",
                   help="a test-time method to report beside the centre crop (repeatable): "
                        "flip, ten-crop, multiscale:256,384,512, dense; with several "
                        "SOURCEs, the one method every member is scored with")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--device", default="auto", metavar="cpu|cuda|auto")
    p.add_argument("--batch-size", type=int, default=256, metavar="N")
    p.add_argument("--tta-flip", action="store_true", help="average each image and its mirror")
    p.add_argument("--no-ema", action="store_true", help="the raw weights, not the EMA")
    p.add_argument("--out", metavar="DIR", help="where the confusion-matrix PNG goes "
                   "(default: an eval/ folder beside the checkpoint)")
    p.add_argument("--no-plot", action="store_true", help="no confusion-matrix PNG (saves "
                   "loading the plotting library)")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1, got {args.batch_size}")
    if len(args.sources) > 1:
        return _ensemble(args)
    if args.tta or args.weights:
        return _methods(args)
    return _plain(args)


# ---------------------------------------------------------------- one run, one view


def _plain(args: argparse.Namespace) -> int:
    from ..evaluation.checkpoint_eval import evaluate_checkpoint
    from ..tables import Table

    if args.out:
        output_file(f"{args.out}/confusion.png", "--out")
    r = evaluate_checkpoint(args.sources[0], data=args.data, data_dir=args.data_dir,
                            split=args.split, which=args.which, device=args.device,
                            batch_size=args.batch_size, tta_flip=args.tta_flip,
                            ema=not args.no_ema, out=args.out, plot=not args.no_plot)
    if args.format == "json":
        emit(json.dumps(r))
        return 0
    rows = [[n, r['per_class_n'][n], f"{acc:.4f}", f"{1 - acc:.4f}"]
            for n, acc in r["per_class"].items()]
    notes = [f"top-1 accuracy {r['top1']:.4f} (error {r['err1']:.4f}); top-{r['top5_k']} "
             f"accuracy {r['top5']:.4f} (error {r['err5']:.4f}); loss {r['loss']:.4f}"]
    if r.get("note"):
        notes.append(r["note"])
    if r["confusion_png"]:
        notes.append(f"confusion matrix: {r['confusion_png']}")
    notes.insert(0, f"{r['n']:,} {r['split']} images; checkpoint {r['checkpoint_used']}")
    emit(Table(f"{r['model']} on {r['data']}", ["class", "images", "accuracy", "error"],
               rows, notes, align_right={1, 2, 3}).render("table"))
    return 0


# ---------------------------------------------------------------- shared: sources


def _load(args: argparse.Namespace, source: str, device: Any) -> Any:
    from ..runs.source import load_source

    return load_source(source, args.weights, need_weights=True, prefer=args.which,
                       ema=not args.no_ema, device=device)


# ---------------------------------------------------------------- test-time methods


def _methods(args: argparse.Namespace) -> int:
    from ..evaluation.checkpoint_eval import load_data_for
    from ..evaluation.score import plan_for, score
    from ..evaluation.tta import parse_method
    from ..runtime.device import resolve_device
    from ..runtime.progress import Progress
    from ..tables import Table

    methods = ["none", *dict.fromkeys(str(parse_method(m)) for m in (args.tta or ()))]
    if args.tta_flip and "flip" not in methods:
        methods.append("flip")
    methods = list(dict.fromkeys(methods))
    dev = resolve_device(args.device)
    src = _load(args, args.sources[0], dev)
    ds, own = load_data_for(src, args.data, args.data_dir)
    split = ds.test if args.split == "test" else ds.train
    plan = plan_for(src, ds, device=dev, method="none", data_is_own=own)
    progress = Progress(enabled=args.format != "json")
    results = [(parse_method(m), score(plan, split, batch_size=args.batch_size, method=m,
                                       progress=progress)) for m in methods]
    names = plan.classes.names
    size = plan.input_size
    model = plan.model
    base = results[0][1]
    out = {"source": src.description, "model": getattr(model, "model_name", None),
           "data": ds.name, "split": args.split, "n": base.n, "input_size": list(size),
           "methods": [{"method": str(m), "views": m.views(),
                        **{k: v for k, v in r.to_dict(names).items() if k != "per_class"}}
                       for m, r in results]}
    note = "; ".join(n for n in plan.notes if "scored with flip" not in n) or None
    if note:
        out["note"] = note
    if args.format == "json":
        emit(json.dumps(out))
        return 0
    rows = [[str(m), m.views(), f"{r.top1:.4f}", f"{r.top5:.4f}", f"{r.err1:.4f}",
             f"{r.top1 - base.top1:+.4f}", f"{r.loss:.4f}"] for m, r in results]
    notes = [f"{base.n:,} {args.split} images of {ds.name}; {src.description}; input "
             f"{'x'.join(map(str, size))}",
             "every method averages the softmax over its views; 'none' is the centre crop"]
    if note:
        notes.append(note)
    emit(Table("test-time methods", ["method", "views", "top-1", f"top-{base.k}", "error",
                                     "top-1 vs centre", "loss"], rows, notes,
               align_right={1, 2, 3, 4, 5, 6}).render("table"))
    return 0


# ---------------------------------------------------------------- ensembles


def _ensemble(args: argparse.Namespace) -> int:
    from ..evaluation.checkpoint_eval import load_data_for
    from ..evaluation.ensemble import evaluate_ensemble
    from ..evaluation.tta import parse_method
    from ..runtime.device import resolve_device

    if args.tta and len(args.tta) > 1:
        raise UserInputError("an ensemble is scored with one test-time method; give --tta once")
    method = str(parse_method(args.tta[0])) if args.tta else ("flip" if args.tta_flip
                                                              else None)
    dev = resolve_device(args.device)
    members = [_load(args, s, dev) for s in args.sources]
    ds, own = load_data_for(members[0], args.data, args.data_dir)
    split = ds.test if args.split == "test" else ds.train
    res = evaluate_ensemble(members, split, ds, method=method, batch_size=args.batch_size,
                            device=dev, data_is_own=own)
    if args.format == "json":
        emit(json.dumps({"data": ds.name, "split": args.split, **res.to_dict()}))
        return 0
    table = res.table()
    table.notes.insert(0, f"{res.ensemble.n:,} {args.split} images of {ds.name}")
    emit(table.render("table"))
    return 0
