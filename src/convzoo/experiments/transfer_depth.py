"""How deep to fine-tune: a pretrained source fine-tuned with 0 (a linear probe: only the new
last layer), 1, 2, ... all of its stages retrained, on a data set near the source's task and
on one far from it; and how much each stage's weights moved when all of them were retrained.

The lecture (seed 002) says the further the new task is from ImageNet, the more layers should
be retrained, and that the first layers' filters are alike for every task. The first claim is
read off the accuracy against depth for the near and the far data set; the second off the
relative weight change ||W_after - W_before|| / ||W_before|| of each group (stem, stage1 ...,
the head's layers before the new last layer) after full fine-tuning.

Choices:
- Depth d retrains the new head and the last d groups of the body (`train.freeze` plans:
  mode `linear` for d = 0, mode `partial` with train_last = d otherwise); frozen groups stay in
  eval mode, so their batch-norm statistics do not move either.
- Every retrained group gets the same learning rate by default (lr_decay 1.0, not the
  fine-tuning default 0.1 per group): with smaller steps further down, the first layers would
  change least by construction, and the weight changes would measure the schedule instead of
  the data.
- Batch-norm statistics are re-estimated on the training images before a fine-tuned model is
  scored (`recalibrate_bn`, on by default): the retrained groups' weights adapt to the batch
  statistics seen in training, while their running averages lag behind, the more so with
  EfficientNet-Lite's TensorFlow momentum of 0.01 (in 24 steps they move a fifth of the way).
  Only the batch norms of retrained groups are re-estimated, in one pass over the labelled
  subset without augmentation; frozen groups keep the source's statistics, which the probe's
  new layer was trained on. Both scores are kept (`top1` and `top1_stale_bn`).
- Every depth trains for the same epochs from the same copy of the source, on the same
  labelled subset (the first k images of each class in a seeded order) and is scored on the
  same test images.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.dataset import ArraySplit, DataSet
from ..errors import UserInputError
from ..sizes import Size
from ..tables import Table
from ..train.batch_norm import recalibrate_bn, trained_norms
from .common import fresh, pyplot
from .parts import Parts, say_estimate, source_stamp, step_seconds, train_seconds
from .settings import full_flag, option, sized


@dataclass
class TransferDepthSettings:
    """`convzoo experiment transfer-depth`'s settings (see `run_transfer_depth`)."""

    source: str = option(None, "a run directory or checkpoint, or a model name with "
                         "--weights", positional=True, metavar="SOURCE")
    weights: str | None = option(None, metavar="W")
    data: tuple[str, ...] = option((), "data sets, comma-separated (near the source's task "
                                   "first)", required=True, metavar="NEAR,FAR")
    data_dir: str | None = option(None, metavar="DIR")
    depths: tuple[int, ...] | None = sized(
        (0, 1, 3), None, "groups retrained before the head (all: 0 .. all; all is always run, "
        "the weight changes come from it)", metavar="D,D,...", minimum=0)
    labels_per_class: int | None = sized(20, None, "train on the first K images of each "
                                         "class", metavar="K", minimum=1)
    epochs: int = option(3, metavar="N", minimum=1)
    lr: float = option(0.01, metavar="X", minimum=1e-12)
    lr_decay: float = option(1.0, "rate factor per group further from the head (1: the same "
                             "rate for every retrained group)", metavar="X", minimum=1e-12)
    batch_size: int = option(32, metavar="N", minimum=1)
    input: Size | None = option(None, "input size (default: what the weights expect, at "
                                "most --max-side)", metavar="CxHxW")
    max_side: int | None = sized(64, None, "largest input side where --input is not given",
                                 metavar="PIXELS", minimum=8)
    test_limit: int | None = sized(200, None, "score on about N test images", metavar="N",
                                   minimum=1)
    no_recalibrate_bn: bool = option(False, "score with the batch-norm statistics training "
                                     "left")
    device: str = option("auto", metavar="cpu|cuda|auto")
    seed: int = option(0, metavar="N")
    out: str = option("runs/transfer-depth", metavar="DIR")
    full: bool = full_flag()


def body_groups(model: nn.Module) -> list[str]:
    """The groups before the head, from the input: stem, stage1, ..., stageN."""
    names = list(model.group_modules())
    return names[:names.index("head")]


def depth_plan(depth: int) -> tuple[str, int]:
    """(fine-tuning mode, train_last) for `depth` retrained groups."""
    return ("linear", 0) if depth == 0 else ("partial", depth)


def subset(split: ArraySplit, per_class: int | None, seed: int) -> ArraySplit:
    """The first `per_class` images of each class in a seeded order (all when None)."""
    if per_class is None:
        return split
    if per_class < 1:
        raise UserInputError(f"labels per class must be at least 1, got {per_class}")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(split), generator=g)
    keep = torch.cat([order[split.labels[order] == c][:per_class]
                      for c in torch.unique(split.labels).tolist()]).sort().values
    return ArraySplit(split.images[keep].contiguous(), split.labels[keep])


def _group_params(model: nn.Module) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Each body group's parameters, and the head's without its last layer (the new one)."""
    groups = model.group_modules()
    out = {name: list(groups[name].named_parameters()) for name in body_groups(model)}
    head = groups["head"]
    pre = getattr(head, "pre", None)
    if pre is not None and any(True for _ in pre.parameters()):
        out["head (before the new last layer)"] = list(pre.named_parameters())
    return out


def snapshot(model: nn.Module) -> dict[str, list[torch.Tensor]]:
    """A copy of every group's parameters, to measure how far fine-tuning moves them."""
    return {g: [p.detach().float().cpu().clone() for _, p in ps]
            for g, ps in _group_params(model).items()}


def relative_change(before: dict[str, list[torch.Tensor]],
                    model: nn.Module) -> list[dict[str, Any]]:
    """||W_after - W_before|| / ||W_before|| per group, all its parameters taken together."""
    rows = []
    for g, ps in _group_params(model).items():
        old = before[g]
        diff = sum(float((p.detach().float().cpu() - o).pow(2).sum()) for (_, p), o in
                   zip(ps, old))
        base = sum(float(o.pow(2).sum()) for o in old)
        rows.append({"group": g, "params": sum(o.numel() for o in old),
                     "relative_change": (diff ** 0.5) / max(base ** 0.5, 1e-12)})
    return rows


def _score(model: nn.Module, split: ArraySplit, cfg: Any, dev: torch.device,
           num_classes: int) -> Any:
    from ..data.loader import make_loader
    from ..evaluation.score import evaluate

    batches = make_loader(split, batch_size=max(cfg.batch_size, 64), train=False, device=dev,
                          input_size=cfg.input_size, mean=cfg.mean, std=cfg.std, augment=None,
                          seed=0, epoch=0)
    return evaluate(model, batches, num_classes, device=dev)


def run_transfer_depth(
    source: str | Any, datasets: Sequence[DataSet], out: Path, *, weights: str | None = None,
    depths: Sequence[int] | None = None, labels_per_class: int | None = None,
    epochs: int = 3, lr: float = 0.01, lr_decay: float = 1.0, batch_size: int = 32,
    device: str = "auto", seed: int = 0, input_size: tuple[int, int, int] | None = None,
    test_limit: int | None = None, recalibrate: bool = True, max_side: int | None = None,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Fine-tune `source` at every depth on every data set; write transfer_depth.json/.md/.png
    under `out` and return the result.

    `source`: a SOURCE string (`train.source.load_source` reads it with `weights`) or a
    source already loaded. `datasets`: typically two, one near the source's task and one far
    from it, in that order.
    `depths`: retrained groups, default 0 (probe) .. all; the full depth is always run, since
    the weight changes come from it. `labels_per_class` (None: all) and `test_limit` (test
    images, None: all) keep a CPU run short; `input_size` (C, H, W) overrides the source's.
    `recalibrate`: re-estimate the retrained batch norms' statistics on the training images
    before scoring (see the module docstring). `max_side` caps the input's side where
    `input_size` is not given. Each depth's result is kept under `out`/parts when it finishes
    and loaded when the experiment is run again with the same settings."""
    from ..runs.source import load_source
    from ..runtime.device import resolve_device
    from ..train.finetune import input_size_for

    if not datasets:
        raise UserInputError("give at least one data set")
    for d in datasets:
        if not isinstance(d.train, ArraySplit):
            raise UserInputError(f"the transfer-depth experiment needs data held in memory; "
                                 f"{d.name} is an image folder")
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    src = load_source(source, weights) if isinstance(source, str) else source
    name = getattr(src.model, "model_name", source)
    groups = body_groups(src.model)
    full = len(groups)
    chosen = sorted(set(range(full + 1) if depths is None else depths) | {full})
    bad = [d for d in chosen if not 0 <= d <= full]
    if bad:
        raise UserInputError(f"depth {bad[0]} is outside 0..{full} ({name} has "
                             f"{', '.join(groups)} before its head)")
    size = input_size_for(src, input_size)
    if input_size is None:
        from .transfer import capped

        size = capped(size, max_side)
    log(f"source: {src.description}; input {'x'.join(map(str, size))}; groups "
        f"{', '.join(groups)}")
    parts = Parts(out, "transfer-depth", {
        **source_stamp(src), "input_size": list(size), "epochs": epochs, "lr": lr,
        "lr_decay": lr_decay, "batch_size": batch_size, "labels_per_class": labels_per_class,
        "test_limit": test_limit, "recalibrate": recalibrate, "device": str(dev),
        "seed": seed}, log)

    def part(data: DataSet, depth: int) -> tuple[str, dict[str, Any]]:
        return (f"{data.name}-depth{depth}",
                {"data": data.name, "train_images": len(data.train),
                 "test_images": len(data.test)})

    with torch.random.fork_rng(devices=[]):  # the estimate draws no number the run uses
        left = 0.0
        todo = [(d, depth) for d in datasets for depth in chosen
                if not parts.done(*part(d, depth))]
        # two timed passes: forward only (the probe's frozen body) and a whole training step;
        # a depth in between costs in proportion to the groups it retrains
        rate: dict[str, float] = {}
        if todo:
            b = min(batch_size, 32)
            rate = {"forward": step_seconds(src.model, size, b, dev, train=False) / b,
                    "full": step_seconds(src.model, size, b, dev) / b}
        for d, depth in todo:
            n = len(subset(d.train, labels_per_class, seed))
            per_image = rate["forward"] + (rate["full"] - rate["forward"]) * depth / full
            b = min(batch_size, n)
            tests = min(len(d.test), test_limit or len(d.test))
            # the batch-norm re-estimation and the score: a forward pass over train and test
            left += train_seconds(per_image * b, rate["forward"] * b, n, tests + n, epochs, b)
        say_estimate(log, left, len(datasets) * len(chosen),
                     len(datasets) * len(chosen) - len(todo))

    rows: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    for data in datasets:
        train = subset(data.train, labels_per_class, seed)
        test = data.test
        if test_limit and len(test) > test_limit:
            test = subset(test, max(1, test_limit // data.num_classes), seed + 1)
        small = dataclasses.replace(data, train=train, test=test)
        mean, std = src.mean or data.mean, src.std or data.std
        for depth in chosen:
            key, extra = part(data, depth)
            saved = parts.load(key, extra)
            if saved is None:
                saved = _fine_tune(src, data, small, train, depth, full, groups, name, size,
                                   mean, std, dev, epochs, lr, lr_decay, batch_size, seed,
                                   recalibrate, out, log)
                parts.save(key, saved, extra)
            rows.append(saved["row"])
            changes.extend(saved["changes"])
    result = {"source": src.description, "model": name, "input_size": list(size),
              "groups": groups, "depths": chosen, "epochs": epochs, "lr": lr,
              "lr_decay": lr_decay, "batch_size": batch_size,
              "labels_per_class": labels_per_class, "test_limit": test_limit, "seed": seed,
              "recalibrate_bn": recalibrate,
              "data": [{"name": d.name, "train_images": len(subset(d.train, labels_per_class,
                                                                    seed)),
                        "classes": d.num_classes} for d in datasets],
              "rows": rows, "weight_change": changes,
              "seconds": round(time.perf_counter() - t_all, 1)}
    (out / "transfer_depth.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "transfer_depth.md").write_text(
        "\n\n".join(t.render("markdown") for t in result_tables(result)) + "\n")
    plot(result, out / "transfer_depth.png")
    return result


def _fine_tune(src: Any, data: DataSet, small: DataSet, train: ArraySplit, depth: int,
               full: int, groups: list[str], name: str, size: tuple[int, int, int], mean: Any,
               std: Any, dev: torch.device, epochs: int, lr: float, lr_decay: float,
               batch_size: int, seed: int, recalibrate: bool, out: Path,
               log: Callable[[str], Any]) -> dict[str, Any]:
    """One depth fine-tuned on one data set: {"row": its result, "changes": the weight
    changes per group (for the full depth; empty otherwise)}."""
    from ..runtime.progress import Progress
    from ..train.config import TrainConfig
    from ..train.finetune import prepare_finetune
    from ..train.loop import fit

    test = small.test
    mode, last = depth_plan(depth)
    run_dir = out / "runs" / f"{data.name.replace(':', '_')}-depth{depth}"
    fresh(run_dir)
    cfg = TrainConfig(model=name, data=data.name, epochs=epochs, lr=lr,
                      batch_size=min(batch_size, len(train)), schedule="cosine",
                      weight_decay=1e-4, momentum=0.9, device=str(dev), seed=seed,
                      mean=list(mean), std=list(std), plots=False,
                      tensorboard=False, out=str(run_dir), eval_every=epochs)
    # seeded: a depth's new head does not depend on which depths ran before it
    ft = prepare_finetune(src, list(data.classes), cfg, mode=mode, train_last=last,
                          lr_decay=lr_decay, input_size=size, seed=seed,
                          model=copy.deepcopy(src.model))
    model, cfg = ft.model, ft.config
    before = snapshot(model) if depth == full else None
    t = time.perf_counter()
    summary = fit(cfg, data=small, model=model, progress=Progress(enabled=False))
    trained = groups[full - depth:] if depth else []
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    row = {"data": data.name, "depth": depth, "mode": mode,
           "groups_trained": [*trained, "head"], "trainable_params": trainable,
           "top1": summary["test"]["top1"], "top5": summary["test"]["top5"]}
    norms = trained_norms(model) if recalibrate else []
    if norms:
        from ..data.loader import make_loader

        model.to(dev)
        recalibrate_bn(model, make_loader(
            train, batch_size=cfg.batch_size, train=False, device=dev,
            input_size=size, mean=mean, std=std, augment=None, seed=0, epoch=0), norms)
        row["top1_stale_bn"] = row["top1"]
        scored = _score(model, test, cfg, dev, data.num_classes)
        row["top1"], row["top5"] = scored.top1, scored.top5
        row["bn_recalibrated"] = len(norms)
    row["seconds"] = round(time.perf_counter() - t, 2)
    stale = (f", {row['top1_stale_bn']:.4f} before re-estimating {len(norms)} batch "
             "norms" if norms else "")
    log(f"  {data.name} depth {depth}: top-1 {row['top1']:.4f}{stale} "
        f"({trainable:,} parameters trained, {row['seconds']:.0f} s)")
    changes = [] if before is None else [{"data": data.name, **c}
                                         for c in relative_change(before, model)]
    return {"row": row, "changes": changes}


def result_tables(result: dict[str, Any]) -> list[Table]:
    """Accuracy by depth (a column per data set) and weight change by group."""
    names = [d["name"] for d in result["data"]]
    acc = {(r["data"], r["depth"]): r["top1"] for r in result["rows"]}
    rows = [[d, "probe (last layer only)" if d == 0 else ", ".join(
        result["groups"][len(result["groups"]) - d:]),
        *(f"{acc[(n, d)]:.4f}" if (n, d) in acc else "-" for n in names)]
        for d in result["depths"]]
    t1 = Table(f"transfer depth: {result['model']} (test top-1)",
               ["depth", "retrained before the head", *names], rows,
               [f"source: {result['source']}", f"{result['epochs']} epochs per depth, cosine "
                f"from lr {result['lr']}, lr_decay {result['lr_decay']}",
                "retrained batch norms re-estimated on the training images before scoring"
                if result.get("recalibrate_bn") else "batch-norm statistics as training left "
                "them (not re-estimated)"], align_right={0})
    change = {(c["data"], c["group"]): c["relative_change"] for c in result["weight_change"]}
    group_names = list(dict.fromkeys(c["group"] for c in result["weight_change"]))
    t2 = Table("relative weight change after full fine-tuning, ||W_after - W_before|| / "
               "||W_before||", ["group", *names],
               [[g, *(f"{change[(n, g)]:.4f}" if (n, g) in change else "-" for n in names)]
                for g in group_names], [], align_right=set(range(1, len(names) + 1)))
    return [t1, t2]


def plot(result: dict[str, Any], path: Path) -> Path | None:
    plt = pyplot()
    if plt is None:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for d in result["data"]:
        pts = [(r["depth"], r["top1"]) for r in result["rows"] if r["data"] == d["name"]]
        ax1.plot(*zip(*pts), marker="o", label=d["name"])
        ch = [c for c in result["weight_change"] if c["data"] == d["name"]]
        ax2.plot(range(len(ch)), [c["relative_change"] for c in ch], marker="o",
                 label=d["name"])
        ax2.set_xticks(range(len(ch)), [c["group"].split(" ")[0] for c in ch], rotation=45)
    ax1.set_xlabel("groups retrained before the head (0: linear probe)")
    ax1.set_ylabel("test top-1")
    ax1.set_title(f"{result['model']}: accuracy against depth")
    ax2.set_ylabel("||W_after - W_before|| / ||W_before||")
    ax2.set_title("weight change after full fine-tuning")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["body_groups", "depth_plan", "recalibrate_bn", "relative_change", "result_tables",
           "run_transfer_depth", "snapshot", "subset", "trained_norms"]
