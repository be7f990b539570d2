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
from .parts import Parts, say_estimate, source_stamp, step_seconds, train_seconds
from .settings import full_flag, option, sized

METHODS = ("probe_pretrained", "probe_random", "partial", "scratch")


@dataclass
class TransferSettings:
    """`convzoo experiment transfer`'s settings (see `run_transfer`)."""

    source: str = option(None, "a run directory or checkpoint, or a model name with "
                         "--weights", positional=True, metavar="SOURCE")
    weights: str | None = option(None, metavar="W")
    data: str = option(None, required=True, metavar="NAME")
    data_dir: str | None = option(None, metavar="DIR")
    labels_per_class: tuple[int, ...] = sized((10, 100), (10, 100, 1000), metavar="K,K,...",
                                              minimum=1)
    methods: tuple[str, ...] = option(METHODS, metavar="M,M,...")
    epochs: int = option(5, "budget of partial fine-tuning and of training from scratch",
                         metavar="N", minimum=1)
    lr: float = option(0.01, metavar="X")
    train_last: int = option(1, metavar="N", minimum=1)
    batch_size: int = option(64, metavar="N", minimum=1)
    input: Size | None = option(None, "input size (default: what the weights expect, at "
                                "most --max-side)", metavar="CxHxW")
    max_side: int | None = sized(64, None, "largest input side where --input is not given",
                                 metavar="PIXELS", minimum=8)
    test_limit: int | None = sized(500, None, "score on N test images", metavar="N", minimum=1)
    device: str = option("auto", metavar="cpu|cuda|auto")
    seed: int = option(0, metavar="N")
    out: str = option("runs/transfer", metavar="DIR")
    full: bool = full_flag()
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


def capped(size: tuple[int, int, int], max_side: int | None) -> tuple[int, int, int]:
    """`size` scaled down so its longer side is at most `max_side` (None: as it is)."""
    c, h, w = size
    if max_side is None or max(h, w) <= max_side:
        return size
    scale = max_side / max(h, w)
    return c, max(1, round(h * scale)), max(1, round(w * scale))


def run_transfer(
    source: str, data: DataSet, counts: list[int], out: Path, *, weights: str | None = None,
    epochs: int = 5, lr: float = 0.01, train_last: int = 1, batch_size: int = 64,
    device: str = "auto", seed: int = 0, test_limit: int | None = None,
    input_size: tuple[int, int, int] | None = None, methods: tuple[str, ...] = METHODS,
    max_side: int | None = None, log=print,
) -> dict[str, Any]:
    """Score the four methods for every labels-per-class count in `counts`; write
    transfer.json/.csv/.md/.png under `out` and return the result. Each finished part (the
    features of each kind, each fine-tuned or scratch net) is kept under `out`/parts and
    loaded when the experiment is run again with the same settings. `max_side` caps the
    input's side where `input_size` is not given."""
    from ..evaluation.features import linear_probe
    from ..runs.source import load_source
    from ..train.finetune import input_size_for
    from ..train.loop import resolve_device

    if not isinstance(data.train, ArraySplit):
        raise UserInputError("the transfer experiment needs a data set held in memory")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise UserInputError(f"unknown method {bad[0]!r}; choose from {', '.join(METHODS)}")
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    src = load_source(source, weights)
    name = getattr(src.model, "model_name", source)
    size = input_size_for(src, input_size)
    if input_size is None:
        size = capped(size, max_side)
    mean = src.mean or data.mean
    std = src.std or data.std
    test = data.test
    if test_limit and len(test) > test_limit:
        test = take(test, nested_subsets(test.labels, [max(1, test_limit // data.num_classes)],
                                         seed + 1)[max(1, test_limit // data.num_classes)])
    subsets = nested_subsets(data.train.labels, sorted(counts), seed)
    log(f"source: {src.description}; input {'x'.join(map(str, size))}; "
        f"{len(test)} test images")
    parts = Parts(out, "transfer", {
        **source_stamp(src), "data": data.name, "train_images": len(data.train),
        "test_images": len(test), "input_size": list(size), "epochs": epochs, "lr": lr,
        "train_last": train_last, "batch_size": batch_size, "device": str(dev),
        "seed": seed}, log)
    ctx = _Context(src, name, data, test, subsets, size, mean, std, dev, epochs, lr,
                   train_last, batch_size, seed, out)
    largest = max(counts)
    probes = [m for m in ("probe_pretrained", "probe_random") if m in methods]
    trained = [(m, k) for k in sorted(counts) for m in ("partial", "scratch") if m in methods]
    with torch.random.fork_rng(devices=[]):  # the estimate draws no number the run uses
        _estimate(ctx, parts, probes, trained, largest, log)

    feats: dict[str, tuple] = {}
    for method in probes:
        extra = {"labels_per_class": largest}
        saved = parts.load_tensors(f"features-{method}", extra)
        if saved is None:
            t = time.perf_counter()
            (tr_x, tr_y), (te_x, te_y) = ctx.features(method)
            saved = {"train_x": tr_x, "train_y": tr_y, "test_x": te_x, "test_y": te_y}
            parts.save_tensors(f"features-{method}", saved, extra)
            log(f"{LABELS[method].split(', ')[1]}: {time.perf_counter() - t:.1f} s")
        feats[method] = ((saved["train_x"], saved["train_y"]),
                         (saved["test_x"], saved["test_y"]))

    rows: list[dict[str, Any]] = []
    for k in sorted(counts):
        # positions of this subset inside the largest one (subsets are nested)
        pos = torch.searchsorted(subsets[largest], subsets[k])
        row: dict[str, Any] = {"labels_per_class": k, "train_images": int(pos.numel())}
        for method, ((tr_x, tr_y), (te_x, te_y)) in feats.items():
            res = linear_probe(tr_x[pos], tr_y[pos], te_x, te_y, data.num_classes, seed=seed)
            row[method] = res["test_acc"]
        for method in ("partial", "scratch"):
            if method not in methods:
                continue
            done = parts.load(f"{method}-{k}")
            if done is None:
                done = {"top1": ctx.train(method, k)}
                parts.save(f"{method}-{k}", done)
            row[method] = done["top1"]
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


@dataclass
class _Context:
    """What every part of one transfer experiment shares."""

    src: Any
    name: str
    data: DataSet
    test: ArraySplit
    subsets: dict[int, torch.Tensor]
    size: tuple[int, int, int]
    mean: Any
    std: Any
    dev: torch.device
    epochs: int
    lr: float
    train_last: int
    batch_size: int
    seed: int
    out: Path

    def feature_model(self, method: str) -> torch.nn.Module:
        from ..registry import create_model

        if method == "probe_pretrained":
            return self.src.model
        torch.manual_seed(self.seed)
        return create_model(self.name, **dict(getattr(self.src.model, "model_args", {})))

    def features(self, method: str) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        from ..data.loader import make_loader
        from ..evaluation.features import extract

        model = self.feature_model(method).to(self.dev)
        largest = take(self.data.train, self.subsets[max(self.subsets)])

        def run(split: ArraySplit) -> tuple[torch.Tensor, ...]:
            batches = make_loader(split, batch_size=128, train=False, device=self.dev,
                                  input_size=self.size, mean=self.mean, std=self.std,
                                  augment=None, seed=self.seed, epoch=0)
            return extract(model, batches)

        return run(largest), run(self.test)

    def model(self, method: str, cfg: Any) -> tuple[torch.nn.Module, Any]:
        from ..registry import create_model
        from ..train.finetune import prepare_finetune

        if method == "partial":
            ft = prepare_finetune(self.src, list(self.data.classes), cfg, mode="partial",
                                  train_last=self.train_last, input_size=self.size,
                                  model=copy.deepcopy(self.src.model))  # weights read once
            return ft.model, ft.config
        torch.manual_seed(self.seed)
        base = dict(getattr(self.src.model, "model_args", {}))
        return create_model(self.name, **{**base, "num_classes": self.data.num_classes}), cfg

    def config(self, method: str, k: int) -> Any:
        from ..train.config import TrainConfig

        n = int(self.subsets[k].numel())
        return TrainConfig(model=self.name, data=self.data.name, epochs=self.epochs,
                           lr=self.lr, batch_size=min(self.batch_size, n), schedule="cosine",
                           weight_decay=1e-4, momentum=0.9, device=str(self.dev),
                           seed=self.seed, input_size=self.size, mean=list(self.mean),
                           std=list(self.std), plots=False, tensorboard=False,
                           out=str(self.out / f"{method}-{k}"),
                           eval_every=self.epochs)  # scored once, at the end

    def train(self, method: str, k: int) -> float:
        from ..runtime.progress import Progress
        from ..train.loop import fit
        from .common import fresh

        cfg = self.config(method, k)
        model, cfg = self.model(method, cfg)
        fresh(Path(cfg.out))
        small = dataclasses.replace(self.data, train=take(self.data.train, self.subsets[k]),
                                    test=self.test)
        summary = fit(cfg, data=small, model=model, progress=Progress(enabled=False))
        return summary["test"]["top1"]


def _estimate(ctx: _Context, parts: Parts, probes: list[str], trained: list[tuple[str, int]],
              largest: int, log: Any) -> None:
    """Say how long the parts not yet finished will take, from one timed step of each net."""
    todo = [m for m in probes if not parts.done(f"features-{m}", {"labels_per_class": largest})]
    nets = [(m, k) for m, k in trained if not parts.done(f"{m}-{k}")]
    seconds = 0.0
    if todo:
        fwd = step_seconds(ctx.src.model, ctx.size, 32, ctx.dev, train=False) / 32
        n = int(ctx.subsets[largest].numel()) + len(ctx.test)
        seconds += len(todo) * n * fwd
    step: dict[str, float] = {}
    for method, k in nets:
        cfg = ctx.config(method, k)
        if method not in step:
            model, _ = ctx.model(method, cfg)
            step[method] = step_seconds(model, ctx.size, cfg.batch_size, ctx.dev) \
                / cfg.batch_size
        per_image = step[method]
        n = int(ctx.subsets[k].numel())
        # fine-tuning's validation pass and the test set at a third of a training step's cost
        seconds += train_seconds(per_image * cfg.batch_size, per_image * cfg.batch_size / 3,
                                 n, len(ctx.test), ctx.epochs, cfg.batch_size)
    total = len(probes) + len(trained)
    say_estimate(log, seconds, total, total - len(todo) - len(nets))


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
