"""`convzoo experiment NAME`: the lectures' experiments: `transfer` (pretrained versus random
features, fine-tuning versus scratch), `transfer-depth` (how many layers to retrain, near and
far from the source task), `activations` (why ReLU) and `degradation` (plain versus residual
nets of growing depth)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from .common import emit, formatter


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..experiments.activations import ActivationsSettings
    from ..experiments.degradation import PAPER_SETTING, DegradationSettings
    from ..experiments.settings import add_flags
    from ..experiments.transfer import TransferSettings
    from ..experiments.transfer_depth import TransferDepthSettings

    p = sub.add_parser("experiment", help="the lectures' experiments", description=textwrap.fill(
        "The lectures' experiments, sized by default to finish in minutes on a 2-core CPU "
        "(--full: the paper-sized run). Each prints its expected duration before it starts, "
        "saves every finished part under --out DIR/parts with the settings that produced it, "
        "and when run again with the same settings continues from them.", 79))
    kinds = p.add_subparsers(dest="experiment", metavar="NAME", required=True)
    q = kinds.add_parser(
        "transfer", help="pretrained vs random features, fine-tuning vs scratch",
        **formatter("example:\n  convzoo experiment transfer efficientnet_lite0 --weights "
                    "imagenet --data fashion-mnist --labels-per-class 10,100 --input 3x96x96"))
    add_flags(q, TransferSettings)
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
    add_flags(q, TransferDepthSettings)
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
    add_flags(q, ActivationsSettings)
    q.set_defaults(func=cmd_activations)

    q = kinds.add_parser(
        "degradation", help="plain vs residual nets of growing depth (He et al. Figure 6)",
        description=textwrap.fill(
            "Plain and residual networks of each depth trained with the same budget; records "
            "training loss and error per epoch. The defaults finish in a few minutes on a "
            f"2-core CPU; --full is {PAPER_SETTING} (--data cifar10 --depths 20,32,44,56 "
            "--epochs 164 --warmup 0: 64k iterations on the 50k images).", 79),
        **formatter("examples:\n  convzoo experiment degradation --data mnist5k "
                    "--depths 8,20,56 --epochs 4\n"
                    "  convzoo experiment degradation --family highway --data mnist5k "
                    "--depths 10,50 --epochs 10"))
    add_flags(q, DegradationSettings)
    q.set_defaults(func=cmd_degradation)


def cmd_transfer(args: argparse.Namespace) -> int:
    from ..data.catalog import load_dataset
    from ..experiments.settings import from_args, resolve
    from ..experiments.transfer import TransferSettings, result_table, run_transfer

    s = resolve(from_args(TransferSettings, args))
    data = load_dataset(s.data, s.data_dir, seed=s.seed)
    result = run_transfer(s.source, data, list(s.labels_per_class), Path(s.out),
                          weights=s.weights, epochs=s.epochs, lr=s.lr, train_last=s.train_last,
                          batch_size=s.batch_size, device=s.device, seed=s.seed,
                          test_limit=s.test_limit, input_size=s.input, methods=s.methods,
                          max_side=s.max_side, log=emit)
    emit(result_table(result).render("table"))
    emit(f"written: {s.out}/transfer.json, .csv, .md, .png")
    return 0


def cmd_transfer_depth(args: argparse.Namespace) -> int:
    from ..data.catalog import load_dataset
    from ..experiments.settings import from_args, resolve
    from ..experiments.transfer_depth import (
        TransferDepthSettings,
        result_tables,
        run_transfer_depth,
    )

    s = resolve(from_args(TransferDepthSettings, args))
    datasets = [load_dataset(n, s.data_dir, seed=s.seed) for n in s.data]
    result = run_transfer_depth(s.source, datasets, Path(s.out), weights=s.weights,
                                depths=s.depths, labels_per_class=s.labels_per_class,
                                epochs=s.epochs, lr=s.lr, lr_decay=s.lr_decay,
                                batch_size=s.batch_size, device=s.device, seed=s.seed,
                                input_size=s.input, test_limit=s.test_limit,
                                recalibrate=not s.no_recalibrate_bn, max_side=s.max_side,
                                log=emit)
    for t in result_tables(result):
        emit(t.render("table"))
    emit(f"written: {s.out}/transfer_depth.json, .md, .png")
    return 0


def cmd_activations(args: argparse.Namespace) -> int:
    from ..data.catalog import load_dataset
    from ..experiments.activations import ActivationsSettings, result_table, run_activations
    from ..experiments.settings import from_args, resolve

    s = resolve(from_args(ActivationsSettings, args))
    depth = s.depth if s.depth is not None else (9 if s.model == "plain_fc" else None)
    data = load_dataset(s.data, s.data_dir, seed=s.seed)
    result = run_activations(data, Path(s.out), acts=s.act, model=s.model, depth=depth,
                             epochs=s.epochs, lr=s.lr, batch_size=s.batch_size,
                             init=s.init, device=s.device, seed=s.seed, log=emit)
    emit(result_table(result).render("table"))
    emit(f"written: {s.out}/activations.json, .md, .png")
    return 0


def cmd_degradation(args: argparse.Namespace) -> int:
    from ..data.catalog import load_dataset
    from ..experiments.degradation import DegradationSettings, result_table, run_degradation
    from ..experiments.settings import from_args, resolve

    s = resolve(from_args(DegradationSettings, args))
    data = load_dataset(s.data, s.data_dir, seed=s.seed)
    result = run_degradation(data, Path(s.out), depths=s.depths, family=s.family,
                             epochs=s.epochs, lr=s.lr, batch_size=s.batch_size,
                             warmup=s.warmup, input=s.input, device=s.device, seed=s.seed,
                             log=emit)
    emit(result_table(result).render("table"))
    emit(f"written: {s.out}/degradation.json, .md, .png")
    return 0
