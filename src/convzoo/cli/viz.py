"""`convzoo viz filters` and `convzoo viz activations`: PNG pictures of a network."""

from __future__ import annotations

import argparse

from .common import emit, formatter, output_file, positive, size_arg

SOURCE_HELP = ("a training run directory or checkpoint, or a registered model name (random "
               "weights unless --weights)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "viz", help="pictures: a layer's filters, an image's activation maps, saliency",
        **formatter("examples:\n"
                    "  convzoo viz filters efficientnet_lite0 --weights imagenet --out f.png\n"
                    "  convzoo viz activations efficientnet_lite0 cat.jpg --weights imagenet "
                    "--out maps.png"))
    kinds = p.add_subparsers(dest="picture", metavar="PICTURE", required=True)

    q = kinds.add_parser(
        "filters", help="a convolution's filters as a PNG grid (default: the first conv)",
        **formatter("examples:\n"
                    "  convzoo viz filters efficientnet_lite0 --weights imagenet "
                    "--out filters.png\n"
                    "  convzoo viz filters runs/lenet5_modern-mnist --layer stage1 "
                    "--out lenet.png"))
    q.add_argument("source", metavar="MODEL_OR_RUN", help=SOURCE_HELP)
    q.add_argument("--weights", metavar="W", help="'imagenet' (efficientnet_lite0) or a "
                   "weights file (.safetensors, .pth)")
    q.add_argument("--layer", metavar="NAME", help="a Conv2d's name, or a group (stem, "
                   "stage2, ...) meaning its first convolution")
    q.add_argument("--max-filters", type=int, default=64, metavar="N")
    q.add_argument("--scale", type=int, metavar="S",
                   help="pixels per weight (default: a kernel is about 32 pixels across)")
    q.add_argument("--out", required=True, metavar="FILE.png")
    q.set_defaults(func=cmd_filters)

    q = kinds.add_parser(
        "activations", help="one image's activation maps at a layer (the first K channels)",
        **formatter("examples:\n"
                    "  convzoo viz activations efficientnet_lite0 cat.jpg --weights imagenet "
                    "--layer stage2 --out maps.png\n"
                    "  convzoo viz activations runs/lenet5_modern-mnist digit.png "
                    "--out maps.png"))
    q.add_argument("source", metavar="MODEL_OR_RUN", help=SOURCE_HELP)
    q.add_argument("image", metavar="IMAGE")
    q.add_argument("--weights", metavar="W")
    q.add_argument("--layer", metavar="NAME", help="a group (stem, stage2, ...) or any module's "
                   "name (default: stem)")
    q.add_argument("--channels", type=int, default=32, metavar="K",
                   help="how many channels to draw (default 32)")
    q.add_argument("--scale", type=int, metavar="S", help="pixels per activation")
    q.add_argument("--out", required=True, metavar="FILE.png")
    q.set_defaults(func=cmd_activations)

    q = kinds.add_parser(
        "activation-functions", aliases=["activations-functions"],
        help="sigmoid, tanh, ReLU, leaky ReLU, ELU, SELU and their derivatives",
        **formatter("example:\n  convzoo viz activation-functions --out functions.png"))
    q.add_argument("--out", required=True, metavar="FILE.png")
    q.add_argument("--range", type=float, nargs=2, default=(-4.0, 4.0), metavar=("LO", "HI"))
    q.add_argument("--no-slides", action="store_true",
                   help="leave out the slides' leaky ReLU and SELU lines, drawn dotted")
    q.set_defaults(func=cmd_activation_functions)

    q = kinds.add_parser(
        "top-patches", help="the image patches where a layer's filters respond most over a "
                            "data set (Zeiler and Fergus)",
        **formatter("examples:\n"
                    "  convzoo viz top-patches efficientnet_lite0 --weights imagenet "
                    "--data imagefolder:photos --layer stage3 --out top.png\n"
                    "  convzoo viz top-patches runs/lenet5_modern-mnist --layer stage2 "
                    "--filters 0,3,7 --top 6 --out top.png"))
    q.add_argument("source", metavar="MODEL_OR_RUN", help=SOURCE_HELP)
    q.add_argument("--weights", metavar="W")
    q.add_argument("--data", metavar="NAME", help="the images to scan (default: the run's)")
    q.add_argument("--data-dir", metavar="DIR")
    q.add_argument("--split", choices=("test", "train"), default="test")
    q.add_argument("--layer", required=True, metavar="NAME",
                   help="a group (stem, stage3, ...) or any module's name")
    q.add_argument("--filters", default="16", metavar="N|I,J,...",
                   help="the first N filters, or a list of indices (default 16)")
    q.add_argument("--top", type=int, default=9, metavar="K", help="patches per filter")
    q.add_argument("--limit", type=int, metavar="N", help="scan only the first N images")
    q.add_argument("--batch-size", type=int, default=64, metavar="N")
    q.add_argument("--device", default="auto", metavar="cpu|cuda|auto")
    q.add_argument("--out", required=True, metavar="FILE.png",
                   help="the grid; FILE.json beside it gets every patch's value and place")
    q.set_defaults(func=cmd_top_patches)

    q = kinds.add_parser(
        "architecture", help="the network drawn as the lectures draw it: volumes, blocks, "
                             "columns (SVG, PNG or PDF)",
        **formatter("examples:\n"
                    "  convzoo viz architecture lenet5 --style volumes --out lenet5.svg\n"
                    "  convzoo viz architecture googlenet --style blocks "
                    "--block stages.0.inception3a --out 3a.png\n"
                    "  convzoo viz architecture vgg19 plain34 resnet34 --style columns "
                    "--out fig3.svg"))
    q.add_argument("models", nargs="+", metavar="MODEL", help="registered names (columns "
                   "draws several side by side)")
    q.add_argument("--style", choices=("volumes", "blocks", "columns"), default="volumes",
                   help="volumes: feature maps as boxes (LeNet, AlexNet); blocks: inside one "
                        "block; columns: one box per layer, shortcuts as arcs (ResNet Fig. 3)")
    q.add_argument("--block", metavar="NAME", help="blocks: the block's module name, e.g. "
                   "stages.0.inception3a (default: the first block of each kind)")
    q.add_argument("--input", type=size_arg, metavar="CxHxW",
                   help="input size (default: the model's own)")
    q.add_argument("--out", required=True, metavar="FILE.svg|.png|.pdf")
    q.set_defaults(func=cmd_architecture)
    add_saliency(kinds)


def add_saliency(kinds: argparse._SubParsersAction) -> None:
    q = kinds.add_parser(
        "saliency", help="where in an image the evidence for a class lies: Grad-CAM and "
                         "occlusion (Zeiler and Fergus)",
        **formatter("examples:\n"
                    "  convzoo viz saliency efficientnet_lite0 cat.jpg --weights imagenet "
                    "--out cat-saliency.png\n"
                    "  convzoo viz saliency runs/my-photos photos/cat/1.jpg --class cat "
                    "--patch 16 --out why.png"))
    q.add_argument("source", metavar="MODEL_OR_RUN", help=SOURCE_HELP)
    q.add_argument("image", metavar="IMAGE")
    q.add_argument("--weights", metavar="W")
    q.add_argument("--class", dest="target", metavar="NAME|INDEX",
                   help="the class to explain (default: the predicted one)")
    q.add_argument("--patch", type=int, metavar="PX", help="occluding square's side "
                   "(default: an eighth of the input's side)")
    q.add_argument("--stride", type=int, metavar="PX", help="its step (default: half the "
                   "square)")
    q.add_argument("--out", required=True, metavar="FILE.png")
    q.set_defaults(func=cmd_saliency)


def cmd_saliency(args: argparse.Namespace) -> int:
    from ..errors import UserInputError
    from ..runs.source import load_source
    from ..viz.activations import image_input
    from ..viz.saliency import draw_saliency, saliency

    output_file(args.out)
    positive(args.patch, "--patch")
    positive(args.stride, "--stride")
    src = load_source(args.source, args.weights)
    model = src.model.float().eval()
    x = image_input(model, args.image, src.preprocess)
    names = list(src.class_names or [])
    target = None
    if args.target is not None:
        if args.target in names:
            target = names.index(args.target)
        elif args.target.isdigit():
            target = int(args.target)
        else:
            raise UserInputError(f"--class {args.target!r} is not one of the model's classes "
                                 f"({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})")
    s = saliency(model, x, target, args.patch, args.stride)
    name = names[s.target] if s.target < len(names) else f"class {s.target}"
    title = f"why {name}? (probability {s.prob:.2f}) — {args.image}"
    path = draw_saliency(x, s, args.out, title)
    peak = [divmod(int(m.argmax()), m.shape[1]) for m in (s.gradcam, s.occlusion)]
    emit(f"{path}: evidence for {name} (p={s.prob:.3f}) in {args.image}, input "
         f"{'x'.join(map(str, x.shape[1:]))}; Grad-CAM peaks at (row, col) {peak[0]}, "
         f"occlusion at {peak[1]}; of {src.description}")
    return 0


def cmd_architecture(args: argparse.Namespace) -> int:
    from ..registry import get_entry
    from ..viz.architecture import draw_architecture

    output_file(args.out)
    for name in args.models:
        get_entry(name)  # an unknown name: the registry's message with close names
    flows, (w, h) = draw_architecture(args.models, args.style, args.out, args.block,
                                      args.input)
    params = ", ".join(f"{f.name} {f.profile.total_params:,} parameters" for f in flows)
    emit(f"{args.out}: {args.style} of {params}; {w}x{h} pixels at the SVG's scale")
    return 0


def cmd_activation_functions(args: argparse.Namespace) -> int:
    from ..viz.functions import ACTIVATIONS, draw_activation_functions

    output_file(args.out)
    w, h = draw_activation_functions(args.out, lo=args.range[0], hi=args.range[1],
                                     slide_formulas=not args.no_slides)
    emit(f"{args.out}: {', '.join(ACTIVATIONS)} and their derivatives, {w}x{h} pixels")
    return 0


def cmd_filters(args: argparse.Namespace) -> int:
    from ..runs.source import load_source
    from ..viz.filters import draw_filters

    output_file(args.out)
    positive(args.max_filters, "--max-filters")
    positive(args.scale, "--scale")
    src = load_source(args.source, args.weights)
    what = src.description
    pic = draw_filters(src.model, args.out, args.layer, args.scale, args.max_filters)
    shape = "x".join(map(str, pic.weight_shape))
    emit(f"{pic.path}: {pic.shown} filters of {pic.layer} (weight {shape}) of {what}, "
         f"{pic.size[0]}x{pic.size[1]} pixels")
    return 0


def cmd_activations(args: argparse.Namespace) -> int:
    from ..runs.source import load_source
    from ..viz.activations import draw_activations

    output_file(args.out)
    positive(args.channels, "--channels")
    positive(args.scale, "--scale")
    src = load_source(args.source, args.weights)
    what = src.description
    pic = draw_activations(src.model, args.image, args.out, args.layer, args.channels,
                           args.scale, src.preprocess)
    shape = "x".join(map(str, pic.shape))
    emit(f"{pic.path}: {pic.shown} of {pic.shape[0]} channels at {pic.layer} (output {shape}) "
         f"of {what}; mean {pic.mean:.3g}, {100 * pic.zero_fraction:.1f}% zeros; "
         f"{pic.size[0]}x{pic.size[1]} pixels")
    return 0


def _filters_arg(text: str) -> int | list[int]:
    from ..errors import UserInputError

    try:
        if "," in text:
            return [int(v) for v in text.split(",") if v.strip()]
        n = int(text)
    except ValueError:
        raise UserInputError(f"--filters takes a count (16) or indices (0,3,7), not "
                             f"{text!r}") from None
    positive(n, "--filters")
    return n


def cmd_top_patches(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..data.catalog import load_dataset
    from ..data.dataset import ArraySplit, FolderSplit
    from ..errors import UserInputError
    from ..runs.source import load_source
    from ..runtime.device import resolve_device
    from ..runtime.progress import Progress
    from ..viz.top_patches import draw_top_patches, scan_split

    positive(args.top, "--top")
    positive(args.limit, "--limit")
    positive(args.batch_size, "--batch-size")
    filters = _filters_arg(args.filters)
    if not args.out.lower().endswith(".png"):
        raise UserInputError(f"--out {args.out}: give a .png file name")
    dev = resolve_device(args.device)
    src = load_source(args.source, args.weights, device=dev)
    name = args.data or src.info.data
    if not name:
        raise UserInputError("which images? add --data NAME (a model name brings none)")
    ds = load_dataset(name, args.data_dir, seed=src.info.setting("seed", 0))
    split = ds.test if args.split == "test" else ds.train
    available = len(split)
    if args.limit and len(split) > args.limit:
        split = (ArraySplit(split.images[:args.limit].contiguous(), split.labels[:args.limit])
                 if isinstance(split, ArraySplit) else FolderSplit(split.samples[:args.limit]))
    res = scan_split(src, split, args.layer, filters=filters, top=args.top,
                     batch_size=args.batch_size, device=dev, progress=Progress())
    size = tuple(src.input_size or src.model.default_input_size)
    # as scan_split normalised them, so the patches are drawn in their own colours
    mean = src.mean if src.mean is not None else (0.5,) * size[0]
    std = src.std if src.std is not None else (0.5,) * size[0]
    w, h = draw_top_patches(res, args.out, mean, std)
    meta = {"source": src.description, "data": ds.name, "split": args.split,
            "input_size": list(size), **res.to_dict()}
    side = Path(args.out).with_suffix(".json")
    side.write_text(json.dumps(meta, indent=2) + "\n")
    f = res.field
    other = "train" if args.split == "test" else "test"
    scanned = (f"all {res.scanned:,} {args.split} images" if res.scanned >= available else
               f"{res.scanned:,} of the {available:,} {args.split} images (--limit)")
    emit(f"{args.out}: {len(res.filters)} filters of {res.layer} x top {res.values.shape[1]} "
         f"patches over {scanned} of {ds.name} (--split {other} for the {other} images); "
         f"receptive field "
         f"{f.size[0]}x{f.size[1]}, jump {f.jump[0]:g}; {w}x{h} pixels; details in {side}")
    return 0
