"""`convzoo experiment NAME`: the lectures' experiments: `transfer` (pretrained versus random
features, fine-tuning versus scratch), `transfer-depth` (how many layers to retrain, near and
far from the source task), `activations` (why ReLU) and `degradation` (plain versus residual
nets of growing depth)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from ..errors import UserInputError
from .common import SOURCE_HELP, emit, formatter, size_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..experiments.activations import ACTIVATIONS
    from ..experiments.degradation import PAPER_SETTING

    p = sub.add_parser("experiment", help="the lectures' experiments")
    kinds = p.add_subparsers(dest="experiment", metavar="NAME", required=True)
    q = kinds.add_parser(
        "transfer", help="pretrained vs random features, fine-tuning vs scratch",
        **formatter("example:\n  convzoo experiment transfer efficientnet_lite0 --weights "
                    "imagenet --data fashion-mnist --labels-per-class 10,100 --input 3x96x96"))
    q.add_argument("source", metavar="SOURCE", help=SOURCE_HELP)
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
    q.set_defaults(func=cmd_transfer)

    q = kinds.add_parser(
        "transfer-depth", help="how deep to fine-tune: 0 (probe), 1, 2, ... all groups "
                               "retrained, near and far from the source task",
        description=textwrap.fill(
            "Fine-tunes SOURCE with its last 0 (a linear probe), 1, 2, ... all groups before "
            "the head retrained, on each data set (typically one near the source's task and "
            "one far from it), plots accuracy against depth and reports each group's "
            "relative weight change ||W_after - W_before|| / ||W_before|| after full "
            "fine-tuning. Retrained batch norms are re-estimated on the training images "
            "before scoring unless --no-recalibrate-bn.", 79),
        **formatter("examples:\n  convzoo experiment transfer-depth efficientnet_lite0 "
                    "--weights imagenet --data lfw,digits --labels-per-class 20 "
                    "--input 3x96x96 --depths 0,1,3,8\n"
                    "  convzoo experiment transfer-depth runs/lenet5_modern-mnist "
                    "--data fashion-mnist --labels-per-class 50 --epochs 2"))
    q.add_argument("source", metavar="SOURCE", help=SOURCE_HELP)
    q.add_argument("--weights", metavar="W")
    q.add_argument("--data", required=True, metavar="NEAR,FAR",
                   help="data sets, comma-separated (near the source's task first)")
    q.add_argument("--data-dir", metavar="DIR")
    q.add_argument("--depths", metavar="D,D,...",
                   help="groups retrained before the head (default: 0 .. all; all is always "
                        "run, the weight changes come from it)")
    q.add_argument("--labels-per-class", type=int, metavar="K",
                   help="train on the first K images of each class (default: all)")
    q.add_argument("--epochs", type=int, default=3, metavar="N")
    q.add_argument("--lr", type=float, default=0.01, metavar="X")
    q.add_argument("--lr-decay", type=float, default=1.0, metavar="X",
                   help="rate factor per group further from the head (default 1: the same "
                        "rate for every retrained group)")
    q.add_argument("--batch-size", type=int, default=32, metavar="N")
    q.add_argument("--input", type=size_arg, metavar="CxHxW",
                   help="input size (default: what the weights expect)")
    q.add_argument("--test-limit", type=int, metavar="N", help="score on about N test images")
    q.add_argument("--no-recalibrate-bn", action="store_true",
                   help="score with the batch-norm statistics training left")
    q.add_argument("--device", default="auto", metavar="cpu|cuda|auto")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", default="runs/transfer-depth", metavar="DIR")
    q.set_defaults(func=cmd_transfer_depth)

    q = kinds.add_parser(
        "activations", help="why ReLU: one net trained with each activation function",
        description=textwrap.fill(
            "The same small network (same initial weights, data order and budget) trained "
            "with each activation; records the training loss per epoch, the test accuracy "
            "and the gradient norm reaching each layer at initialisation.",
            79),
        **formatter("example:\n  convzoo experiment activations --data digits "
                    "--act sigmoid,tanh,relu --depth 9 --epochs 20"))
    q.add_argument("--data", default="digits", metavar="NAME",
                   help="a data set (default: digits, 8x8, offline)")
    q.add_argument("--data-dir", metavar="DIR")
    q.add_argument("--act", default=",".join(ACTIVATIONS), metavar="A,A,...",
                   help=f"activations (default: {','.join(ACTIVATIONS)})")
    q.add_argument("--model", default="plain_fc", metavar="NAME",
                   help="the network (default: plain_fc; lenet5_modern for a conv net)")
    q.add_argument("--depth", type=int, metavar="N", help="hidden layers after the first, for "
                   "plain_fc, highway_fc, plain_conv, highway_conv (default for plain_fc: 9)")
    q.add_argument("--epochs", type=int, default=20, metavar="N")
    q.add_argument("--lr", type=float, default=0.01, metavar="X",
                   help="SGD with momentum 0.9 at a constant rate (default 0.01)")
    q.add_argument("--batch-size", type=int, default=64, metavar="N")
    q.add_argument("--init", choices=("model", "glorot", "he"), default="model",
                   help="weights drawn again for every arm: glorot (suits tanh), he (suits "
                        "ReLU); default: the model's own (Glorot for plain_fc)")
    q.add_argument("--device", default="cpu", metavar="cpu|cuda|auto")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", default="runs/experiment-activations", metavar="DIR")
    q.set_defaults(func=cmd_activations)

    q = kinds.add_parser(
        "degradation", help="plain vs residual nets of growing depth (He et al. Figure 6)",
        description=textwrap.fill(
            "Plain and residual networks of each depth trained with the same budget; records "
            "training loss and error per epoch. The defaults finish in a few minutes on a "
            f"2-core CPU; {PAPER_SETTING} (--data cifar10 --depths 20,32,44,56 --epochs 164 "
            "--warmup 0: 64k iterations on the 50k images).", 79),
        **formatter("examples:\n  convzoo experiment degradation --data mnist5k "
                    "--depths 8,20,56 --epochs 4\n"
                    "  convzoo experiment degradation --family highway --data mnist5k "
                    "--depths 10,50 --epochs 10"))
    q.add_argument("--data", default="mnist5k", metavar="NAME",
                   help="a data set (default: mnist5k, 28x28 padded to the CIFAR nets' 32x32)")
    q.add_argument("--data-dir", metavar="DIR")
    q.add_argument("--family", choices=("resnet", "highway"), default="resnet",
                   help="resnet: CIFAR ResNets (6n+2 layers) vs plain twins; highway: "
                        "highway_fc vs plain_fc (layers in all)")
    q.add_argument("--depths", default="8,20,56", metavar="D,D,...")
    q.add_argument("--epochs", type=int, default=4, metavar="N")
    q.add_argument("--lr", type=float, metavar="X",
                   help="initial rate (default: 0.1 for resnet, 0.01 for highway)")
    q.add_argument("--batch-size", type=int, default=128, metavar="N")
    q.add_argument("--warmup", type=float, default=1.0, metavar="EPOCHS",
                   help="start at a tenth of the rate, rising to it over EPOCHS (default 1; "
                        "the paper warmed up its 110-layer net; at short budgets a 56-layer "
                        "ResNet needs it too; 0: none)")
    q.add_argument("--device", default="cpu", metavar="cpu|cuda|auto")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", default="runs/experiment-degradation", metavar="DIR")
    q.set_defaults(func=cmd_degradation)


def cmd_transfer(args: argparse.Namespace) -> int:
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


def cmd_transfer_depth(args: argparse.Namespace) -> int:
    from ..data.catalog import load_dataset
    from ..experiments.common import parse_list
    from ..experiments.transfer_depth import result_tables, run_transfer_depth

    names = parse_list(args.data, "--data")
    depths = tuple(parse_list(args.depths, "--depths", int)) if args.depths else None
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size),
                        ("--labels-per-class", args.labels_per_class),
                        ("--test-limit", args.test_limit)):
        if value is not None and value < 1:
            raise UserInputError(f"{flag} must be at least 1, got {value}")
    if args.lr <= 0 or args.lr_decay <= 0:
        raise UserInputError("--lr and --lr-decay must be positive")
    datasets = [load_dataset(n, args.data_dir, seed=args.seed) for n in names]
    result = run_transfer_depth(args.source, datasets, Path(args.out), weights=args.weights,
                                depths=depths, labels_per_class=args.labels_per_class,
                                epochs=args.epochs, lr=args.lr, lr_decay=args.lr_decay,
                                batch_size=args.batch_size, device=args.device,
                                seed=args.seed, input_size=args.input,
                                test_limit=args.test_limit,
                                recalibrate=not args.no_recalibrate_bn, log=emit)
    for t in result_tables(result):
        emit(t.render("table"))
    emit(f"written: {args.out}/transfer_depth.json, .md, .png")
    return 0


def cmd_activations(args: argparse.Namespace) -> int:
    from ..data.catalog import load_dataset
    from ..experiments.activations import result_table, run_activations
    from ..experiments.common import parse_list

    acts = tuple(parse_list(args.act, "--act"))
    depth = args.depth if args.depth is not None else (9 if args.model == "plain_fc" else None)
    data = load_dataset(args.data, args.data_dir, seed=args.seed)
    result = run_activations(data, Path(args.out), acts=acts, model=args.model, depth=depth,
                             epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                             init=args.init, device=args.device, seed=args.seed, log=emit)
    emit(result_table(result).render("table"))
    emit(f"written: {args.out}/activations.json, .md, .png")
    return 0


def cmd_degradation(args: argparse.Namespace) -> int:
    from ..data.catalog import load_dataset
    from ..experiments.common import parse_list
    from ..experiments.degradation import result_table, run_degradation

    depths = tuple(parse_list(args.depths, "--depths", int))
    data = load_dataset(args.data, args.data_dir, seed=args.seed)
    result = run_degradation(data, Path(args.out), depths=depths, family=args.family,
                             epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                             warmup=args.warmup, device=args.device, seed=args.seed, log=emit)
    emit(result_table(result).render("table"))
    emit(f"written: {args.out}/degradation.json, .md, .png")
    return 0
