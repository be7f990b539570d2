"""What a run leaves behind besides checkpoints: metrics.csv, TensorBoard events, PNG plots,
summary.json. TensorBoard and matplotlib are optional (the `plots` extra): without them the
CSV and JSON are still written."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

from .disk import write_text_atomic

log = logging.getLogger("convzoo.train")

COLUMNS = ("epoch", "step", "lr", "train_loss", "train_top1", "val_loss", "val_top1",
           "val_top5", "epoch_s", "images_per_s")


class RunLog:
    """Per-epoch metrics: the whole history is rewritten to metrics.csv each epoch (so a resumed
    run's file matches its checkpoint), and appended to TensorBoard."""

    def __init__(self, out: Path, history: list[dict[str, Any]] | None = None,
                 tensorboard: bool = True, purge_step: int | None = None,
                 step_purge: int | None = None) -> None:
        self.out = out
        # the caller's list itself: rows logged here are the run's history
        self.history: list[dict[str, Any]] = history if history is not None else []
        self.writer = self.step_writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(out / "tensorboard"), purge_step=purge_step)
                # per-step scalars count optimiser steps, not epochs: a writer of their own
                # (TensorBoard's run "steps"), so a resumed run purges each on its own axis
                self.step_writer = SummaryWriter(str(out / "tensorboard" / "steps"),
                                                 purge_step=step_purge)
            except ImportError:
                log.info("tensorboard is not installed (pip install 'convzoo[plots]'): "
                         "no event files")

    def log_epoch(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        self.write_csv()
        if self.writer is not None:
            step = row["epoch"]
            for key, value in row.items():
                if key != "epoch" and isinstance(value, int | float) and value == value:
                    self.writer.add_scalar(key.replace("_", "/", 1), value, step)
            self.writer.flush()

    def log_steps(self, last_step: int, losses: list[float], every: int, lr: float) -> None:
        """TensorBoard's `step/loss` (and `step/lr`) for every `every`-th optimiser step among
        the consecutive `losses` ending at `last_step`."""
        if self.step_writer is None or not losses:
            return
        first = last_step - len(losses) + 1
        every = max(1, every)
        for k, loss in enumerate(losses):
            if (first + k) % every == 0 and loss == loss:
                self.step_writer.add_scalar("step/loss", loss, first + k)
                self.step_writer.add_scalar("step/lr", lr, first + k)
        self.step_writer.flush()

    def write_csv(self) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for row in self.history:
            w.writerow({k: _fmt(row.get(k)) for k in COLUMNS})
        write_text_atomic(self.out / "metrics.csv", buf.getvalue())

    def plots(self) -> list[Path]:
        return plot_history(self.history, self.out)

    def close(self) -> None:
        for w in (self.writer, self.step_writer):
            if w is not None:
                w.close()


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


def plot_history(history: list[dict[str, Any]], out: Path) -> list[Path]:
    """loss.png and error.png (top-1 error, and top-5 on the evaluation set), per epoch."""
    if not history:
        return []
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        log.info("matplotlib is not installed (pip install 'convzoo[plots]'): no plots")
        return []

    def series(key: str) -> tuple[list, list]:
        pts = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    written = []
    for name, keys, ylabel in (
        ("loss.png", (("train_loss", "train"), ("val_loss", "evaluation")), "cross-entropy loss"),
        ("error.png", (("train_top1", "train top-1"), ("val_top1", "evaluation top-1"),
                       ("val_top5", "evaluation top-5")), "error (%)"),
    ):
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for key, label in keys:
            xs, ys = series(key)
            if name == "error.png":
                ys = [100 * (1 - y) for y in ys]
            if xs:
                ax.plot(xs, ys, marker="o", ms=3, label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / name)
        plt.close(fig)
        written.append(out / name)
    return written


def plot_confusion(confusion: Any, names: list[str], path: Path, title: str = "") -> Path | None:
    """A confusion matrix (rows: true class, columns: predicted), normalised per row."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed (pip install 'convzoo[plots]'): no plot")
        return None
    cm = confusion.double()
    cm = cm / cm.sum(1, keepdim=True).clamp(min=1)
    k = len(names)
    side = min(16, max(4, 0.45 * k + 2))
    fig, ax = plt.subplots(figsize=(side, side), dpi=100)
    ax.imshow(cm.numpy(), cmap="Blues", vmin=0, vmax=1)
    if k <= 40:
        ax.set_xticks(range(k), names, rotation=90, fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
        if k <= 20:
            for i in range(k):
                for j in range(k):
                    v = cm[i, j].item()
                    if v >= 0.005:
                        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                                color="white" if v > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    # wrapped to the figure's width: a long data name (imagefolder:/a/long/path) would be cut
    # off at the edges; about 9 characters of an 11-point title fit an inch, with margins
    import textwrap

    ax.set_title(textwrap.fill(title or "confusion matrix (fraction of each true class)",
                               width=max(24, int(side * 9)), break_long_words=True,
                               break_on_hyphens=False), fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_json(path: Path, obj: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, default=repr) + "\n")
