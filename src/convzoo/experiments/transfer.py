"""Why transfer works, measured: pretrained features against random ones, and fine-tuning
against training from scratch, as the number of labelled images per class grows.

For each labels-per-class count k (the subsets are nested: the first k of each class's
seeded order), four models are scored on the same held-out images:
- a linear probe on the source's features (its head's input);
- a linear probe on the features of the same architecture with random weights;
- partial fine-tuning (new head plus the last stages, smaller rates further down);
- the same architecture trained from scratch for the same number of epochs.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.dataset import ArraySplit, DataSet
from ..errors import UserInputError
from ..sizes import Size
from ..tables import Table
from .settings import option

METHODS = ("probe_pretrained", "probe_random", "partial", "scratch")


@dataclass
class TransferSettings:
    """`convzoo experiment transfer`'s settings (see `run_transfer`)."""

    source: str = option(None, "a run directory or checkpoint, or a model name with "
                         "--weights", positional=True, metavar="SOURCE")
    weights: str | None = option(None, metavar="W")
    data: str = option(None, required=True, metavar="NAME")
    data_dir: str | None = option(None, metavar="DIR")
    labels_per_class: tuple[int, ...] = option((10, 100, 1000), metavar="K,K,...", minimum=1)
    methods: tuple[str, ...] = option(METHODS, metavar="M,M,...")
    epochs: int = option(5, "budget of partial fine-tuning and of training from scratch",
                         metavar="N", minimum=1)
    lr: float = option(0.01, metavar="X")
    train_last: int = option(1, metavar="N", minimum=1)
    batch_size: int = option(64, metavar="N", minimum=1)
    input: Size | None = option(None, "input size (default: what the weights expect)",
                                metavar="CxHxW")
    test_limit: int | None = option(None, "score on N test images", metavar="N", minimum=1)
    device: str = option("auto", metavar="cpu|cuda|auto")
    seed: int = option(0, metavar="N")
    out: str = option("runs/transfer", metavar="DIR")
LABELS = {"probe_pretrained": "linear probe, pretrained features",
          "probe_random": "linear probe, random features",
          "partial": "partial fine-tuning", "scratch": "from scratch"}


def nested_subsets(labels: torch.Tensor, counts: list[int], seed: int) -> dict[int, torch.Tensor]:
    """Indices of the first k images of each class in a seeded order, for every k."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(labels.numel(), generator=g)
    per_class = [order[labels[order] == c] for c in range(int(labels.max()) + 1)]
    out = {}
    for k in counts:
        if k < 1:
            raise UserInputError(f"labels per class must be at least 1, got {k}")
        out[k] = torch.cat([idx[:k] for idx in per_class]).sort().values
    return out


def take(split: ArraySplit, idx: torch.Tensor) -> ArraySplit:
    return ArraySplit(split.images[idx].contiguous(), split.labels[idx])


def run_transfer(
    source: str, data: DataSet, counts: list[int], out: Path, *, weights: str | None = None,
    epochs: int = 5, lr: float = 0.01, train_last: int = 1, batch_size: int = 64,
    device: str = "auto", seed: int = 0, test_limit: int | None = None,
    input_size: tuple[int, int, int] | None = None, methods: tuple[str, ...] = METHODS,
    log=print,
) -> dict[str, Any]:
    from ..data.loader import make_loader
    from ..evaluation.features import extract, linear_probe
    from ..registry import create_model
    from ..runs.source import load_source
    from ..runtime.progress import Progress
    from ..train.config import TrainConfig
    from ..train.finetune import input_size_for, prepare_finetune
    from ..train.loop import fit, resolve_device

    if not isinstance(data.train, ArraySplit):
        raise UserInputError("the transfer experiment needs a data set held in memory")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise UserInputError(f"unknown method {bad[0]!r}; choose from {', '.join(METHODS)}")
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    src = load_source(source, weights)
    name = getattr(src.model, "model_name", source)
    base_args = dict(getattr(src.model, "model_args", {}))
    size = input_size_for(src, input_size)
    mean = src.mean or data.mean
    std = src.std or data.std
    test = data.test
    if test_limit and len(test) > test_limit:
        test = take(test, nested_subsets(test.labels, [max(1, test_limit // data.num_classes)],
                                         seed + 1)[max(1, test_limit // data.num_classes)])
    subsets = nested_subsets(data.train.labels, sorted(counts), seed)
    log(f"source: {src.description}; input {'x'.join(map(str, size))}; "
        f"{len(test)} test images")

    def features(model: torch.nn.Module, split: ArraySplit) -> tuple[torch.Tensor, ...]:
        model.to(dev)
        batches = make_loader(split, batch_size=128, train=False, device=dev, input_size=size,
                              mean=mean, std=std, augment=None, seed=seed, epoch=0)
        return extract(model, batches)

    largest = take(data.train, subsets[max(counts)])
    feats: dict[str, tuple] = {}
    if "probe_pretrained" in methods:
        t = time.perf_counter()
        feats["probe_pretrained"] = (features(src.model, largest), features(src.model, test))
        log(f"pretrained features: {time.perf_counter() - t:.1f} s")
    if "probe_random" in methods:
        torch.manual_seed(seed)
        random_model = create_model(name, **base_args)
        feats["probe_random"] = (features(random_model, largest), features(random_model, test))

    rows: list[dict[str, Any]] = []
    for k in sorted(counts):
        # positions of this subset inside the largest one (subsets are nested)
        pos = torch.searchsorted(subsets[max(counts)], subsets[k])
        row: dict[str, Any] = {"labels_per_class": k, "train_images": int(pos.numel())}
        for method, ((tr_x, tr_y), (te_x, te_y)) in feats.items():
            res = linear_probe(tr_x[pos], tr_y[pos], te_x, te_y, data.num_classes, seed=seed)
            row[method] = res["test_acc"]
        small = dataclasses.replace(data, train=take(data.train, subsets[k]), test=test)
        for method in ("partial", "scratch"):
            if method not in methods:
                continue
            cfg = TrainConfig(model=name, data=data.name, epochs=epochs, lr=lr,
                              batch_size=min(batch_size, int(pos.numel())),
                              schedule="cosine", weight_decay=1e-4, momentum=0.9,
                              device=str(dev), seed=seed, input_size=size,
                              mean=list(mean), std=list(std), plots=False,
                              tensorboard=False, out=str(out / f"{method}-{k}"),
                              eval_every=epochs)  # scored once, at the end
            if method == "partial":
                ft = prepare_finetune(src, list(data.classes), cfg, mode="partial",
                                      train_last=train_last, input_size=size,
                                      model=copy.deepcopy(src.model))  # weights read once
                model, cfg = ft.model, ft.config
            else:
                torch.manual_seed(seed)
                model = create_model(name, **{**base_args, "num_classes": data.num_classes})
            summary = fit(cfg, data=small, model=model, progress=Progress(enabled=False))
            row[method] = summary["test"]["top1"]
        log("  ".join(f"{key} {v:.4f}" if isinstance(v, float) else f"{key} {v}"
                      for key, v in row.items()))
        rows.append(row)

    result = {"source": src.description, "model": name, "data": data.name,
              "input_size": list(size), "test_images": len(test), "epochs": epochs,
              "lr": lr, "train_last": train_last, "seed": seed, "rows": rows}
    (out / "transfer.json").write_text(json.dumps(result, indent=2) + "\n")
    table = result_table(result)
    (out / "transfer.md").write_text(table.render("markdown") + "\n")
    (out / "transfer.csv").write_text(table.render("csv"))
    plot(result, out / "transfer.png")
    return result


def result_table(result: dict[str, Any]) -> Table:
    methods = [m for m in METHODS if any(m in r for r in result["rows"])]
    rows = [[r["labels_per_class"], r["train_images"],
             *(f"{r[m]:.4f}" if m in r else "-" for m in methods)] for r in result["rows"]]
    return Table(f"transfer: {result['model']} on {result['data']} (test accuracy, "
                 f"{result['test_images']} images)",
                 ["labels/class", "train images", *(LABELS[m] for m in methods)], rows,
                 [f"source: {result['source']}"] + (
                     [f"fine-tuning and scratch: {result['epochs']} epochs each, cosine from "
                      f"lr {result['lr']}"] if {"partial", "scratch"} & set(methods) else []),
                 align_right=set(range(len(methods) + 2)))


def plot(result: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    ks = [r["labels_per_class"] for r in result["rows"]]
    for m in METHODS:
        ys = [r.get(m) for r in result["rows"]]
        if any(y is not None for y in ys):
            ax.plot(ks, ys, marker="o", label=LABELS[m])
    ax.set_xscale("log")
    ax.set_xlabel("labelled images per class")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{result['model']} on {result['data']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
