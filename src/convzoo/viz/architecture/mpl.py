"""The same primitives through matplotlib, for PNG and PDF: one canvas pixel is one point at
72 dpi, so text sizes match the SVG's."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserInputError

PNG_DPI = 108  # 1.5 x the SVG's scale: sharp enough on a dense screen, files stay modest


def draw_items(items, box: tuple[float, float, float, float], path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        raise UserInputError(f"{path.suffix} output needs matplotlib: pip install "
                             "'convzoo[plots]' (or write .svg, which needs nothing)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, PathPatch, Polygon
    from matplotlib.path import Path as MPath

    x, y, w, h = box
    fig = plt.figure(figsize=(w / 72, h / 72), dpi=72)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(x, x + w)
    ax.set_ylim(y + h, y)  # SVG's y grows downwards
    ax.axis("off")
    fig.patch.set_facecolor("white")

    def style(it) -> dict:
        return {"facecolor": "none" if it.fill == "none" else it.fill,
                "edgecolor": "none" if it.stroke == "none" else it.stroke,
                "linewidth": it.width, "linestyle": (0, (5, 4)) if it.dash else "-"}

    for z, it in enumerate(items):
        p = it.pts
        if it.kind == "rect":
            (x0, y0), (x1, y1) = p
            r = it.radius
            patch = FancyBboxPatch((x0 + r, y0 + r), max(x1 - x0 - 2 * r, 0.1),
                                   max(y1 - y0 - 2 * r, 0.1),
                                   boxstyle=f"round,pad={r}" if r else "square,pad=0",
                                   zorder=z, **style(it))
            ax.add_patch(patch)
        elif it.kind == "poly":
            ax.add_patch(Polygon(p, closed=True, zorder=z, **style(it)))
        elif it.kind in ("line", "curve"):
            codes = ([MPath.MOVETO] + [MPath.LINETO] * (len(p) - 1) if it.kind == "line"
                     else [MPath.MOVETO, MPath.CURVE4, MPath.CURVE4, MPath.CURVE4])
            st = style(it)
            st["facecolor"] = "none"
            if it.arrow:
                ax.add_patch(FancyArrowPatch(path=MPath(p, codes), arrowstyle="-|>",
                                             mutation_scale=10, color=it.stroke, zorder=z,
                                             linewidth=it.width,
                                             linestyle=st["linestyle"]))
            else:
                ax.add_patch(PathPatch(MPath(p, codes), zorder=z, **st))
        elif it.kind == "circle":
            ax.add_patch(Circle(p[0], it.radius, zorder=z, **style(it)))
        elif it.kind == "text":
            ax.text(p[0][0], p[0][1], it.text, fontsize=it.size, ha=it.anchor.replace(
                "start", "left").replace("end", "right").replace("middle", "center"),
                va="baseline", color=it.fill, fontweight="bold" if it.bold else "normal",
                zorder=z, family="DejaVu Sans")
    fig.savefig(path, dpi=PNG_DPI if path.suffix.lower() == ".png" else 72,
                facecolor="white")
    plt.close(fig)
