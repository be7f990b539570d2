"""`convzoo features SOURCE --data NAME --out FILE`: pooled features and labels from any
layer of a source model, to a safetensors file (the lecture's pretrained-versus-random
features, for any classifier)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import UserInputError
from .common import SOURCE_HELP, emit, formatter, output_file, size_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features", help="pooled features and labels from any layer, to a safetensors file",
        **formatter("examples:\n"
                    "  convzoo features efficientnet_lite0 --weights imagenet --data lfw "
                    "--out lfw.safetensors\n"
                    "  convzoo features runs/x --data fashion-mnist --layer stage2 --random "
                    "--out random.safetensors"))
    p.add_argument("source", metavar="SOURCE", help=SOURCE_HELP)
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


def cmd_features(args: argparse.Namespace) -> int:
    import torch
    from safetensors.torch import save_file

    from ..data.catalog import load_dataset
    from ..data.loader import make_loader
    from ..evaluation.features import extract
    from ..registry import create_model
    from ..runs.source import load_source
    from ..runtime.device import resolve_device
    from ..sizes import fill_channels

    output_file(args.out)
    src = load_source(args.source, args.weights)
    model = src.model
    if args.random:
        torch.manual_seed(args.seed)
        model = create_model(model.model_name, **model.model_args)
    data = load_dataset(args.data, args.data_dir, seed=args.seed)
    dev = resolve_device(args.device)
    model.to(dev)
    own = src.input_size or tuple(model.default_input_size)
    size = fill_channels(args.input or own, own[0])
    mean, std = src.mean or data.mean, src.std or data.std
    tensors: dict[str, torch.Tensor] = {}
    splits = ("train", "test") if args.split == "both" else (args.split,)
    for split in splits:
        batches = make_loader(getattr(data, split), batch_size=args.batch_size, train=False,
                              device=dev, input_size=size, mean=mean, std=std, augment=None,
                              seed=args.seed, epoch=0)
        try:
            x, y = extract(model, batches, args.layer)
        except RuntimeError as e:  # torch's shape error, e.g. a kernel larger than its input
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise UserInputError(f"{model.model_name} cannot take a "
                                 f"{'x'.join(map(str, size))} input ({first}); give a larger "
                                 "--input") from None
        tensors[f"{split}_features"], tensors[f"{split}_labels"] = x.contiguous(), y
    scaled = standardise(tensors, splits[0]) if args.random else None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"source": src.description, "random": str(args.random), "layer": args.layer or
            "head input", "data": data.name, "classes": json.dumps(list(data.classes)),
            "input_size": "x".join(map(str, size))}
    if scaled is not None:
        meta["scaled"] = scaled
    tmp = out.with_name(out.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(out)
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items())
    emit(f"{out}: {shapes} ({'random' if args.random else 'source'} weights, layer "
         f"{meta['layer']})")
    if scaled is not None:
        emit(f"random features {scaled}, so a plain linear model can use them")
    else:
        spread = float(tensors[f"{splits[0]}_features"].float().std())
        if spread < 1e-3:
            emit(f"note: these features vary little (standard deviation {spread:.2g}); "
                 "standardise them (e.g. sklearn's StandardScaler) before a linear model")
    return 0


def standardise(tensors: dict, first: str) -> str:
    """Scale every split's features in place by the per-feature mean and standard deviation
    of `first` split's. A randomly initialised deep network's eval-mode features can be tiny
    (a standard deviation of 1e-9 after many layers of unit-variance batch norm that never saw
    data), far below what a regularised linear model can use; scaling keeps them as they
    are in every other respect. Returns what was done, for the file's metadata."""
    ref = tensors[f"{first}_features"].double()
    mean, std = ref.mean(0), ref.std(0)
    std = std.where(std > 0, std.new_ones(()))  # a constant feature stays constant
    for key in [k for k in tensors if k.endswith("_features")]:
        x = tensors[key]
        tensors[key] = ((x.double() - mean) / std).to(x.dtype).contiguous()
    return (f"standardised (zero mean, unit standard deviation per feature, from the {first} "
            f"split; its raw standard deviation was {float(ref.std()):.2g})")
