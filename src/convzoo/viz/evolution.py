"""The evolution of architectures chart: ImageNet top-1 against operations, marker area for
parameters, every point labelled (seed 002's "Эволюция архитектур")."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserInputError

if TYPE_CHECKING:
    from ..analysis.compare import CompareRow

_AREA = 1800  # marker area, in points^2, of the largest model
_LABEL = {"fontsize": 8, "zorder": 5,
          "bbox": {"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7}}
_COLOURS = {"paper": "#1f77b4", "torchvision": "#d62728", "release": "#2ca02c"}


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserInputError("--plot needs matplotlib: pip install 'convzoo[plots]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _overlaps(a, boxes) -> bool:
    return any(a.x0 < b.x1 and a.x1 > b.x0 and a.y0 < b.y1 and a.y1 > b.y0 for b in boxes)


def draw_evolution(rows: list[CompareRow], path: str | Path, title: str | None = None) -> int:
    """Write the chart as a PNG; returns how many models it shows (those with a top-1)."""
    plt = _pyplot()
    shown = [r for r in rows if r.top1 is not None and r.macs > 0]
    if not shown:
        raise UserInputError("none of these models has a published top-1 accuracy to plot")
    fig, ax = plt.subplots(figsize=(13, 8.5), dpi=110)
    biggest = max(r.params for r in shown)
    for src, colour in _COLOURS.items():
        part = [r for r in shown if r.source == src]
        if part:
            ax.scatter([r.gmacs for r in part], [r.top1 for r in part],
                       s=[_AREA * r.params / biggest + 12 for r in part], c=colour, alpha=0.35,
                       edgecolors=colour, linewidths=1, label=f"source: {src}", zorder=2)
    ax.set_xscale("log")
    xs, ys = [r.gmacs for r in shown], [r.top1 for r in shown]
    ax.set_xlim(min(xs) / 1.6, max(xs) * 1.8)
    ax.set_ylim(min(ys) - 2.5, max(ys) + 2.0)
    ax.set_xlabel("GMACs per image at the model's default input (log scale)")
    ax.set_ylabel("published ImageNet top-1 accuracy (%)")
    ax.set_title(title or "Evolution of architectures: accuracy against operations "
                          "(marker area: parameters)")
    ax.grid(True, which="both", alpha=0.25)
    _label(fig, ax, shown)
    # a size key: three reference parameter counts
    for n in (5e6, 25e6, 100e6):
        if n <= biggest * 1.2:
            ax.scatter([], [], s=_AREA * n / biggest + 12, c="grey", alpha=0.3,
                       label=f"{n / 1e6:g}M parameters")
    legend = ax.legend(loc="lower right", labelspacing=1.6, borderpad=1.0, framealpha=0.9)
    for handle, text in zip(legend.legend_handles, legend.get_texts()):
        if text.get_text().startswith("source"):
            handle.set_sizes([60])  # colour keys: one small marker, not the first model's
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return len(shown)


def _label(fig, ax, rows: list[CompareRow]) -> None:
    """Place each name next to its point where it overlaps no other label or point; try the
    nearest spots first."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed = []
    pts = [ax.transData.transform((r.gmacs, r.top1)) for r in rows]
    dots = []
    for (x, y), r in zip(pts, rows):
        rad = math.sqrt(_AREA * r.params / max(q.params for q in rows) + 12) / 2 * fig.dpi / 72
        dots.append((x, y, max(rad, 3.0)))
    offsets = []
    for dist in (6, 12, 20, 30, 42, 56):
        for ang in (0, 180, 90, 270, 35, 145, 215, 325, 60, 120, 240, 300):
            offsets.append((dist, math.radians(ang)))
    order = sorted(range(len(rows)), key=lambda i: -rows[i].params)
    for i in order:
        r, (x, y), (_, _, rad) = rows[i], pts[i], dots[i]
        best = None
        for dist, ang in offsets:
            dx, dy = math.cos(ang), math.sin(ang)
            ox, oy = (rad + dist * 0.6) * dx, (rad + dist * 0.6) * dy
            ha = "left" if dx > 0.3 else "right" if dx < -0.3 else "center"
            va = "bottom" if dy > 0.3 else "top" if dy < -0.3 else "center"
            t = ax.annotate(r.model, (r.gmacs, r.top1), xytext=(ox * 72 / fig.dpi,
                            oy * 72 / fig.dpi), textcoords="offset points", ha=ha, va=va,
                            **_LABEL)
            box = t.get_window_extent(renderer).expanded(1.04, 1.1)
            inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
                      and box.y1 <= frame.y1)
            hits_dot = any(box.x0 < px + 2 and box.x1 > px - 2 and box.y0 < py + 2
                           and box.y1 > py - 2 for j, (px, py, _) in enumerate(dots) if j != i)
            if inside and not _overlaps(box, placed) and not hits_dot:
                best = (t, box, dist)
                break
            t.remove()
        if best is None:  # crowded: the nearest spot inside the frame, with a leader line
            t = ax.annotate(r.model, (r.gmacs, r.top1), xytext=(18, -14),
                            textcoords="offset points", **_LABEL,
                            arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "grey"})
            best = (t, t.get_window_extent(renderer), 0)
        elif best[2] >= 20:
            best[0].arrow_patch = None
            best[0].remove()
            t = ax.annotate(r.model, (r.gmacs, r.top1), xytext=best[0].get_position(),
                            textcoords="offset points", ha=best[0].get_ha(),
                            va=best[0].get_va(), **_LABEL,
                            arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "grey",
                                        "shrinkA": 0, "shrinkB": rad * 72 / fig.dpi})
            best = (t, t.get_window_extent(renderer), best[2])
        placed.append(best[1])
