"""`convzoo eval RUN`: top-1/top-5, per-class accuracy and a confusion matrix of a trained
run, on the data it trained on or on another set with the same classes."""

from __future__ import annotations

import argparse
import json

from .common import emit, formatter


def add_parser(sub: argparse._SubParsersAction) -> None:
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


def cmd_eval(args: argparse.Namespace) -> int:
    from ..tables import Table
    from ..train.checkpoint_eval import evaluate_checkpoint

    r = evaluate_checkpoint(args.source, data=args.data, data_dir=args.data_dir,
                            split=args.split, which=args.which, device=args.device,
                            batch_size=args.batch_size, tta_flip=args.tta_flip,
                            ema=not args.no_ema, out=args.out)
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
    notes.insert(0, f"{r['n']:,} {r['split']} images; checkpoint {r['checkpoint']}")
    emit(Table(f"{r['model']} on {r['data']}", ["class", "images", "accuracy", "error"],
               rows, notes, align_right={1, 2, 3}).render("table"))
    return 0
