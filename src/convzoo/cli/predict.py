"""`convzoo predict SOURCE IMAGE|FOLDER...`: the top classes of each image (top 5 by default),
as a table, JSON or CSV; `--data NAME` instead: every image of a data set's test split (a pack,
an image folder, ...) with its true class, read as `convzoo eval` reads it."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import torch

from ..data.images import BadImageError, read_image
from ..errors import UserInputError
from ..runs.source import Source, load_source
from ..runtime.device import resolve_device
from .common import SOURCE_HELP, emit, formatter

TOP = 5

EXIT_STATUS = (
    "exit status:\n"
    "  0  every image was classified\n"
    "  1  some image could not be read (missing, truncated, not an image): each is named on\n"
    "     stderr and skipped, and the other images are still classified\n"
    "  2  bad input, such as an unknown model or weights the model does not have"
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="classify image files with a pretrained model: top-5 classes",
        **formatter("examples:\n"
                    "  convzoo predict efficientnet_lite0 --weights imagenet cat.jpg dog.png\n"
                    "  convzoo predict efficientnet_lite0 --weights imagenet photos/ "
                    "--format json\n"
                    "  convzoo predict runs/my-run photos/ --topk 1 --format csv > out.csv\n"
                    "  convzoo predict runs/my-run --data packed:photos.pack --format csv\n\n"
                    + EXIT_STATUS))
    p.add_argument("model", metavar="SOURCE", help=SOURCE_HELP)
    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="image files (jpg, png, ...) or folders (their images, subfolders too)")
    p.add_argument("--data", metavar="NAME",
                   help="instead of IMAGEs: every image of this data set's --split, with its "
                        "true class (packed:FILE, imagefolder:PATH, any catalog name), read "
                        "and scored as `convzoo eval` does")
    p.add_argument("--split", choices=("test", "train"), default="test",
                   help="with --data: which split (default test)")
    p.add_argument("--topk", type=int, default=TOP, metavar="K",
                   help=f"how many classes per image (default {TOP}; at most the model's)")
    p.add_argument("--which", choices=("best", "last"), default="best",
                   help="which checkpoint of a run directory (default best; a run without "
                   "best/ gives last/, and says so)")
    p.add_argument("--weights", metavar="W",
                   help="'imagenet' for a model that ships weights (efficientnet_lite0), "
                        "or a weights file (.safetensors, .pth)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="json: a list with, per image, {path, top5: [{class, prob}]} (the top "
                        "--topk) or, for an image that could not be read, {path, error}; csv: "
                        "a row per image, path then class_1, prob_1, ... class_K, prob_K; "
                        "with --data, each also has its true class (label)")
    p.add_argument("--batch-size", type=int, default=16, metavar="N")
    p.add_argument("--device", default="auto", metavar="cpu|cuda|auto")
    p.set_defaults(func=cmd_predict)
    _intermixed(p)


def _intermixed(p: argparse.ArgumentParser) -> None:
    """Let IMAGEs follow options (`predict M --weights W a.jpg b.jpg`): with IMAGE optional
    (nargs="*", for --data), plain argparse would give it nothing at the first positional and
    refuse the files after the options; the intermixed parse takes options first."""
    plain = p.parse_known_args
    busy = False

    def parse(args=None, namespace=None):  # type: ignore[no-untyped-def]
        nonlocal busy
        if busy:  # parse_known_intermixed_args calls parse_known_args itself
            return plain(args, namespace)
        busy = True
        try:
            return p.parse_known_intermixed_args(args, namespace)
        finally:
            busy = False

    p.parse_known_args = parse  # type: ignore[method-assign]


def expand(paths: list[str]) -> list[str]:
    """Image files as given, and for a folder the image files in it and its subfolders,
    sorted; a folder without images is bad input."""
    from ..data.images import IMAGE_SUFFIXES

    out: list[str] = []
    for path in paths:
        p = Path(path)
        if not p.is_dir():
            out.append(path)
            continue
        found = sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES
                       and not f.name.startswith(".") and f.is_file())
        if not found:
            raise UserInputError(f"{path} is a folder with no image files in it "
                                 f"({', '.join(IMAGE_SUFFIXES)})")
        out.extend(found)
    return out


def classify(src: Source, images: list[str], batch_size: int = 16,
             device: torch.device | None = None, topk: int = TOP) -> list[dict[str, Any]]:
    """Per image, in order: {path, top5: [{class, prob}]} (the `topk` best) or {path, error}."""
    if batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1, got {batch_size}")
    if topk < 1:
        raise UserInputError(f"--topk must be at least 1, got {topk}")
    device = device or torch.device("cpu")
    model = src.model.to(device)
    prep, names = src.preprocess, src.class_names
    results: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], torch.Tensor]] = []

    def flush() -> None:
        if not pending:
            return
        with torch.inference_mode():
            out = model(torch.stack([x for _, x in pending]).to(device))
        logits = out.logits if hasattr(out, "logits") else out
        probs = logits.float().softmax(-1).cpu()
        k = min(topk, probs.shape[-1])
        values, indices = probs.topk(k, dim=-1)
        for (entry, _), v, i in zip(pending, values.tolist(), indices.tolist()):
            entry["top5"] = [{"class": names[c] if names and c < len(names) else f"class {c}",
                              "prob": round(p, 6)} for p, c in zip(v, i)]
        pending.clear()

    for path in images:
        entry: dict[str, Any] = {"path": path}
        results.append(entry)
        try:
            pending.append((entry, prep(read_image(path, channels=prep.channels))))
        except BadImageError as e:
            entry["error"] = e.reason
            continue
        if len(pending) >= batch_size:
            flush()
    flush()
    return results


def render_table(results: list[dict[str, Any]]) -> str:
    """Per image: its path on a line of its own (never wrapped), then rank, probability, class."""
    blocks = []
    for r in results:
        if "top5" not in r:
            continue
        lines = [r["path"]]
        if "label" in r:
            lines.append(f"  true class: {r['label']}")
        lines.append("  rank  probability  class")
        lines += [f"  {i:>4}  {100 * c['prob']:10.2f}%  {c['class']}"
                  for i, c in enumerate(r["top5"], 1)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_csv(results: list[dict[str, Any]]) -> str:
    """path, class_1, prob_1, ..., class_K, prob_K; an unreadable image: its path, then its
    error in an `error` column."""
    k = max((len(r.get("top5", [])) for r in results), default=0)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    labelled = any("label" in r for r in results)
    w.writerow(["path", *(["label"] if labelled else []),
                *[f"{c}_{i}" for i in range(1, k + 1) for c in ("class", "prob")], "error"])
    for r in results:
        cells = [v for c in r.get("top5", []) for v in (c["class"], c["prob"])]
        w.writerow([r["path"], *([r.get("label", "")] if labelled else []), *cells,
                    *[""] * (2 * k - len(cells)), r.get("error", "")])
    return buf.getvalue().rstrip("\n")


def cmd_predict(args: argparse.Namespace) -> int:
    if bool(args.images) == bool(args.data):
        raise UserInputError("give IMAGEs or --data NAME, not both" if args.images else
                              "nothing to predict: give IMAGEs (files or folders) or --data "
                              "NAME (a data set's test split, e.g. packed:FILE)")
    images = expand(args.images)
    device = resolve_device(args.device)
    src = load_source(args.model, args.weights, need_weights=True, prefer=args.which,
                      device=device if args.data else "cpu")
    if src.checkpoint is not None:  # which checkpoint answered; stdout stays the results
        print(f"convzoo predict: {src.description}", file=sys.stderr)
    if args.data:
        from ..evaluation.split_predictions import predict_split

        results, notes = predict_split(src, args.data, split=args.split, topk=args.topk,
                                       batch_size=args.batch_size, device=device)
        scored = [r for r in results if "top5" in r]
        hits = sum(r["top5"][0]["class"] == r["label"] for r in scored)
        for note in notes:
            print(f"convzoo predict: {note}", file=sys.stderr)
        print(f"convzoo predict: {len(results):,} {args.split} images of {args.data}; top-1 "
              f"{hits / max(len(scored), 1):.4f}", file=sys.stderr)
    else:
        results = classify(src, images, args.batch_size, device, args.topk)
    failed = [r for r in results if "error" in r]
    for r in failed:
        print(f"convzoo predict: {r['path']}: {r['error']} (skipped)", file=sys.stderr)
    if args.format == "json":
        emit(json.dumps(results, indent=2))
    elif args.format == "csv":
        emit(render_csv(results))
    else:
        text = render_table(results)
        if text:
            emit(text)
    if failed:
        print(f"convzoo predict: {len(failed)} of {len(results)} images could not be read",
              file=sys.stderr)
    return 1 if failed else 0
