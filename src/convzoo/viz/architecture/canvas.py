"""A drawing as a list of primitives, written as SVG by hand or drawn by matplotlib.

Laying a figure out once and emitting it twice keeps the SVG's text as real <text> elements
(selectable, searchable, checkable by a test) and gives PNG and PDF without an SVG renderer:
cairosvg and rsvg are not pip-only, matplotlib is (the `plots` extra).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
CHAR_W = 0.58  # average glyph width of DejaVu Sans, in font sizes: for layout only


def text_width(s: str, size: float) -> float:
    return len(s) * size * CHAR_W


@dataclass
class Item:
    kind: str  # rect, poly, line, curve, text, circle
    pts: list[tuple[float, float]]
    fill: str = "none"
    stroke: str = "#333"
    width: float = 1.0
    dash: bool = False
    text: str = ""
    size: float = 12.0
    anchor: str = "middle"  # start, middle, end
    bold: bool = False
    radius: float = 0.0  # rect corners; circle radius
    cls: str = ""
    data: dict[str, str] = field(default_factory=dict)
    arrow: bool = False  # a head at the last point


class Canvas:
    def __init__(self) -> None:
        self.items: list[Item] = []

    def add(self, kind: str, pts: list[tuple[float, float]], **kw) -> Item:
        item = Item(kind, [(float(x), float(y)) for x, y in pts], **kw)
        self.items.append(item)
        return item

    def rect(self, x: float, y: float, w: float, h: float, **kw) -> Item:
        return self.add("rect", [(x, y), (x + w, y + h)], **kw)

    def poly(self, pts: list[tuple[float, float]], **kw) -> Item:
        return self.add("poly", pts, **kw)

    def line(self, pts: list[tuple[float, float]], **kw) -> Item:
        return self.add("line", pts, **kw)

    def curve(self, pts: list[tuple[float, float]], **kw) -> Item:
        """A cubic Bezier through four points (start, two controls, end)."""
        return self.add("curve", pts, **kw)

    def circle(self, x: float, y: float, r: float, **kw) -> Item:
        return self.add("circle", [(x, y)], radius=r, **kw)

    def text(self, x: float, y: float, s: str, **kw) -> Item:
        """`y` is the baseline."""
        kw.setdefault("stroke", "none")
        kw.setdefault("fill", "#111")
        return self.add("text", [(x, y)], text=s, **kw)

    def bounds(self) -> tuple[float, float, float, float]:
        xs, ys = [], []
        for it in self.items:
            for x, y in it.pts:
                if it.kind == "text":
                    w = text_width(it.text, it.size)
                    x0 = x - w / 2 if it.anchor == "middle" else x - w if it.anchor == "end" else x
                    xs += [x0, x0 + w]
                    ys += [y - it.size, y + it.size * 0.3]
                else:
                    xs.append(x - it.radius)
                    xs.append(x + it.radius)
                    ys.append(y - it.radius)
                    ys.append(y + it.radius)
        return min(xs), min(ys), max(xs), max(ys)

    # -- output -----------------------------------------------------------------------------

    def save(self, path: str | Path, title: str = "", margin: float = 16) -> tuple[int, int]:
        """Write .svg, .png or .pdf (by suffix); returns the drawing's size in pixels."""
        path = Path(path)
        x0, y0, x1, y1 = self.bounds()
        box = (x0 - margin, y0 - margin, x1 - x0 + 2 * margin, y1 - y0 + 2 * margin)
        if path.suffix.lower() == ".svg":
            path.write_text(self.svg(box, title), encoding="utf-8")
        else:
            self._matplotlib(path, box)
        return round(box[2]), round(box[3])

    def svg(self, box: tuple[float, float, float, float], title: str = "") -> str:
        x, y, w, h = box
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
               f'viewBox="{x:.1f} {y:.1f} {w:.1f} {h:.1f}" font-family="{FONT}">',
               '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
               'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
               'fill="#444"/></marker></defs>']
        if title:
            out.append(f"<title>{escape(title)}</title>")
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                   'fill="white"/>')
        for it in self.items:
            out.append(_svg_item(it))
        out.append("</svg>\n")
        return "\n".join(out)

    def _matplotlib(self, path: Path, box: tuple[float, float, float, float]) -> None:
        from .mpl import draw_items

        draw_items(self.items, box, path)


def _attrs(it: Item) -> str:
    a = []
    if it.cls:
        a.append(f'class="{escape(it.cls)}"')
    for k, v in it.data.items():
        a.append(f'data-{k}="{escape(str(v))}"')
    return (" " + " ".join(a)) if a else ""


def _paint(it: Item) -> str:
    s = f'fill="{it.fill}" stroke="{it.stroke}" stroke-width="{it.width:g}"'
    if it.dash:
        s += ' stroke-dasharray="5,4"'
    if it.arrow:
        s += ' marker-end="url(#head)"'
    return s


def _svg_item(it: Item) -> str:
    p = it.pts
    if it.kind == "rect":
        (x0, y0), (x1, y1) = p
        r = f' rx="{it.radius:g}"' if it.radius else ""
        return (f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}"'
                f'{r} {_paint(it)}{_attrs(it)}/>')
    if it.kind == "poly":
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in p)
        return f'<polygon points="{pts}" {_paint(it)}{_attrs(it)}/>'
    if it.kind == "line":
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in p)
        return f'<polyline points="{pts}" {_paint(it)}{_attrs(it)}/>'
    if it.kind == "curve":
        (a, b, c, d) = p
        dd = (f"M{a[0]:.1f},{a[1]:.1f} C{b[0]:.1f},{b[1]:.1f} {c[0]:.1f},{c[1]:.1f} "
              f"{d[0]:.1f},{d[1]:.1f}")
        return f'<path d="{dd}" {_paint(it)}{_attrs(it)}/>'
    if it.kind == "circle":
        (x, y), r = p[0], it.radius
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:g}" {_paint(it)}{_attrs(it)}/>'
    (x, y) = p[0]
    weight = ' font-weight="bold"' if it.bold else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{it.size:g}" text-anchor="{it.anchor}" '
            f'fill="{it.fill}"{weight}{_attrs(it)}>{escape(it.text)}</text>')
