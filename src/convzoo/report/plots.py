"""The report's charts, drawn with matplotlib (Agg) and returned as PNG bytes to inline.

Every function takes plain data (lists, tensors), so each chart can be drawn and checked on
its own; `matplotlib` is the `plots` extra.
"""

from __future__ import annotations

import io
import math
from typing import Any

import torch

from ..errors import UserInputError

DPI = 100
MAX_LAYER_ROWS = 48  # beyond this, layers are summed per block so the chart stays legible


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserInputError("the report draws its charts with matplotlib: "
                             "pip install 'convzoo[plots]'") from None
    return plt


def png(fig: Any) -> bytes:
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")  # tight: no cut-off labels
    plt.close(fig)
    return buf.getvalue()


def layer_rows(layers: list[Any]) -> list[tuple[str, int, int]]:
    """(name, activation elements, parameters) of the layers worth a bar: those with
    parameters or a pooling layer's output; summed per block when there are too many."""
    rows = [(r.name, int(r.activations), int(r.params)) for r in layers
            if r.params > 0 or "Pool" in r.type]
    if len(rows) <= MAX_LAYER_ROWS:
        return rows
    for depth in (3, 2, 1):
        merged: dict[str, list[int]] = {}
        for name, act, par in rows:
            key = ".".join(name.split(".")[:depth])
            acc = merged.setdefault(key, [0, 0])
            acc[0] += act
            acc[1] += par
        if len(merged) <= MAX_LAYER_ROWS or depth == 1:
            return [(k, v[0], v[1]) for k, v in merged.items()]
    return rows


def layer_chart(layers: list[Any], title: str) -> bytes:
    """Activation memory (fp32, one image) and parameters per layer, side by side: where the
    memory goes (the first convolutions) and where the parameters are (the last layers)."""
    plt = pyplot()
    rows = layer_rows(layers)
    names = [r[0] for r in rows]
    act_div, act_unit = (2**20, "MiB") if max((4 * r[1] for r in rows), default=0) >= 2**20 \
        else (2**10, "KiB")
    par_div, par_unit = (1e6, "millions") if max((r[2] for r in rows), default=0) >= 1e6 \
        else (1e3, "thousands")
    act_mb = [4 * r[1] / act_div for r in rows]
    par_m = [r[2] / par_div for r in rows]
    height = max(3.0, 0.22 * len(rows) + 1.2)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, height), sharey=True)
    y = range(len(rows))
    a.barh(y, act_mb, color="#4C72B0")
    a.set_xlabel(f"activation memory ({act_unit}, fp32, one image)")
    b.barh(y, par_m, color="#DD8452")
    b.set_xlabel(f"parameters ({par_unit})")
    a.set_yticks(list(y), names, fontsize=7 if len(rows) > 24 else 9)
    a.invert_yaxis()  # the input side at the top
    for ax in (a, b):
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return png(fig)


def curves(history: list[dict[str, Any]]) -> bytes:
    """Loss, accuracy and learning rate per epoch."""
    plt = pyplot()
    import matplotlib.ticker

    def series(key: str, scale: float = 1.0) -> tuple[list, list]:
        pts = [(r["epoch"], r[key] * scale) for r in history if r.get(key) is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = (
        ("cross-entropy loss", (("train_loss", "train"), ("val_loss", "evaluation")), 1.0),
        ("accuracy (%)", (("train_top1", "train top-1"), ("val_top1", "evaluation top-1"),
                          ("val_top5", "evaluation top-5")), 100.0),
        ("learning rate", (("lr", "at the epoch's end"),), 1.0),
    )
    for ax, (label, keys, scale) in zip(axes, panels):
        for key, name in keys:
            xs, ys = series(key, scale)
            if xs:
                ax.plot(xs, ys, marker="o", ms=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_title(label, fontsize=10)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if any(r.get("lr") for r in history):
        lrs = [r["lr"] for r in history if r.get("lr")]
        if max(lrs) / max(min(lrs), 1e-30) > 50:
            axes[2].set_yscale("log")
    fig.tight_layout()
    return png(fig)


def confusion(cm: torch.Tensor, classes: list[str]) -> bytes:
    """Rows the true class, columns the predicted one, each row as fractions of its images."""
    plt = pyplot()
    frac = cm.double() / cm.sum(1, keepdim=True).clamp(min=1)
    k = len(classes)
    side = min(12.0, max(4.0, 0.4 * k + 2.0))
    fig, ax = plt.subplots(figsize=(side, side))
    im = ax.imshow(frac.numpy(), cmap="Blues", vmin=0, vmax=1)
    if k <= 40:
        ax.set_xticks(range(k), classes, rotation=45 if k > 5 else 0, ha="right", fontsize=8)
        ax.set_yticks(range(k), classes, fontsize=8)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if cm[i, j] > 0:
                    v = float(frac[i, j])
                    ax.text(j, i, f"{v:.2f}\n{int(cm[i, j])}", ha="center", va="center",
                            fontsize=6.5, color="white" if v > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fig.tight_layout()
    return png(fig)


def per_class(rows: list[tuple[str, int, float]]) -> bytes:
    plt = pyplot()
    names = [r[0] for r in rows]
    acc = [100 * r[2] for r in rows]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(rows) + 2), 3.4))
    ax.bar(range(len(rows)), acc, color="#55A868")
    ax.set_xticks(range(len(rows)), names, rotation=45 if len(rows) > 5 else 0, ha="right",
                  fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("test accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return png(fig)


def mistakes(images: list[torch.Tensor], captions: list[str], cols: int = 8) -> bytes:
    """A grid of images with a caption under each (true and predicted class)."""
    plt = pyplot()
    n = len(images)
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 2.0 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i]
        if img.shape[0] == 1:
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(img[:3].permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(captions[i], fontsize=7.5)
    fig.tight_layout()
    return png(fig)
