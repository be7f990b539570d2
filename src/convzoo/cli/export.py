"""`convzoo export SOURCE --format onnx|exported|torchscript --out FILE`: a file to deploy,
checked against the PyTorch model on random input."""

from __future__ import annotations

import argparse
import sys

from torch import nn

from ..errors import UserInputError
from ..sizes import Size, fill_channels, parse_size
from .common import SOURCE_HELP, formatter

EXAMPLES = (
    "examples:\n"
    "  convzoo export runs/resnet20-cifar10 --format onnx --out resnet20.onnx\n"
    "  convzoo export runs/lenet5-mnist --out lenet5.pt2 --dynamic-batch\n"
    "  convzoo export efficientnet_lite0 --weights imagenet --format torchscript "
    "--out lite0.pt\n\n"
    "The file takes N x C x H x W float32, normalised as in training, and returns the logits.\n"
    "An ONNX file's metadata (metadata_map in ONNX Runtime) holds the class names, the mean\n"
    "and std to normalise with, and the checkpoint it came from.\n"
    "It is loaded back (ONNX Runtime, torch.export.load, torch.jit.load) and run on the same\n"
    "random input as the model: the largest absolute difference, and that divided by the\n"
    "largest absolute output, are printed.\n\n"
    "exit status:\n"
    "  0  written, and the file agrees with the model within --tolerance\n"
    "  1  written, but the file differs from the model by more than --tolerance\n"
    "  2  bad input, or a model that cannot be exported in that format (the reason in a line)"
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..export import FORMATS, ONNX_EXPORTERS

    p = sub.add_parser("export", help="write a model as ONNX, torch.export or TorchScript, "
                       "checked against PyTorch", **formatter(EXAMPLES))
    p.add_argument("source", metavar="SOURCE", help=SOURCE_HELP)
    p.add_argument("--weights", metavar="W",
                   help="for a model name: 'imagenet' for a model that ships weights, or a "
                        "weights file (.safetensors, .pth); without it, random weights")
    p.add_argument("--format", choices=tuple(FORMATS), default=None,
                   help="default: from the suffix of --out (.onnx, .pt2, .pt)")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    p.add_argument("--input", metavar="CxHxW", default=None,
                   help="input size the file takes (HxW or N keep the model's channels; "
                        "default: the size the run trained at, else the model's own)")
    p.add_argument("--which", choices=("best", "last"), default="best",
                   help="which checkpoint of a run directory (default best; a run without "
                   "best/ gives last/, and says so)")
    p.add_argument("--dynamic-batch", action="store_true",
                   help="any batch size (checked on batches of 1 and 3); default: a fixed batch")
    p.add_argument("--batch", type=int, default=1, metavar="N",
                   help="the fixed batch size without --dynamic-batch (default 1)")
    p.add_argument("--onnx-exporter", choices=ONNX_EXPORTERS, default="auto",
                   help="legacy (TorchScript-based, fast), dynamo (torch.export-based), or "
                        "auto: legacy, then dynamo if legacy fails (default)")
    p.add_argument("--tolerance", type=float, default=1e-5, metavar="X",
                   help="largest accepted max|difference| / max|output| (default 1e-5)")
    p.set_defaults(func=cmd_export)


def load_model(source: str, weights: str | None,
               prefer: str = "best") -> tuple[nn.Module, Size | None, dict[str, str]]:
    """The model SOURCE names, on the CPU in eval mode, the input size it was trained at
    (None: the model's own) and what the file's metadata says of it. The one place this
    command reads SOURCE."""
    import json

    from ..runs.source import load_source

    src = load_source(source, weights, device="cpu", prefer=prefer)
    meta = {"convzoo_model": getattr(src.model, "model_name", type(src.model).__name__),
            "source": src.description,
            "input": "N x C x H x W float32: pixels scaled to 0..1, minus mean, divided by std"}
    if src.checkpoint is not None:
        meta["checkpoint"] = str(src.checkpoint.path)
    if src.class_names:
        meta["class_names"] = json.dumps(list(src.class_names))
    mean = src.mean if src.mean is not None else getattr(src.preprocess, "mean", None)
    std = src.std if src.std is not None else getattr(src.preprocess, "std", None)
    if mean is not None and std is not None:
        meta["mean"], meta["std"] = json.dumps(list(mean)), json.dumps(list(std))
    if src.checkpoint is not None:  # which of the run's checkpoints goes into the file
        print(f"source: {src.description}")
    if weights is None and src.checkpoint is None:
        # a model name alone: enough to try a runtime, not to predict anything
        print(f"convzoo export: note: {src.description}", file=sys.stderr)
    return src.model, src.input_size, meta


def model_channels(model: nn.Module) -> int:
    default = getattr(model, "default_input_size", (3, 224, 224))
    return int(getattr(model, "model_args", {}).get("in_channels", default[0]))


def input_size(model: nn.Module, given: str | None, trained: Size | None) -> Size:
    """--input, else the size the weights were trained at, else the model's default; an open
    channel count (HxW) is the model's."""
    if given is not None:
        return fill_channels(parse_size(given), model_channels(model))
    size = trained or tuple(getattr(model, "default_input_size", (3, 224, 224)))
    return fill_channels(size, model_channels(model))


def cmd_export(args: argparse.Namespace) -> int:
    from ..export import export_model, format_for

    fmt = format_for(args.format, args.out)  # a bad --out is named before the model loads
    if not args.tolerance > 0:
        raise UserInputError(f"--tolerance must be positive, got {args.tolerance}")
    model, trained, meta = load_model(args.source, args.weights, args.which)
    size = input_size(model, args.input, trained)
    meta["input_size"] = "x".join(map(str, size))
    result = export_model(model, fmt, args.out, size, dynamic_batch=args.dynamic_batch,
                          batch=args.batch, onnx_exporter=args.onnx_exporter, metadata=meta)
    p = result.parity
    c, h, w = result.input_size
    batch = "any batch" if result.batch is None else f"batch {result.batch}"
    name = getattr(model, "model_name", type(model).__name__)
    print(f"wrote {result.path} ({result.format}, {result.exporter}, "
          f"{result.size_bytes / 1e6:.1f} MB): {name}, input {batch} x {c}x{h}x{w}")
    batches = ", ".join(str(n) for n in p.batches)
    ok = p.relative <= args.tolerance
    print(f"parity on random input (batch {batches}): max |difference| {p.max_abs_diff:.3g}, "
          f"max |output| {p.max_abs_output:.3g}, relative {p.relative:.3g} "
          f"({'within' if ok else 'ABOVE'} tolerance {args.tolerance:g})")
    if not ok:
        print(f"convzoo export: {result.path} differs from the model by more than "
              f"--tolerance {args.tolerance:g}", file=sys.stderr)
        return 1
    return 0
