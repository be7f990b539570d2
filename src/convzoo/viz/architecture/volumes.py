"""`volumes`: LeNet-5's and AlexNet's figures: each feature map a box (height and oblique
depth from its spatial size, thickness from its channels), the kernel a small box in the map
before with lines to the point it makes; vectors as bars; AlexNet's towers as two rows."""

from __future__ import annotations

import math

from .canvas import Canvas, text_width
from .graph import Flow, layer_text, shape_text
from .units import Unit, units

ROW_W = 1100  # wrap to a new row past this width (a page scales wider drawings down)
GAP = 34
CAP = 11  # caption font size
FILL = {"conv": "#cfe0f5", "pool": "#e6e6e6", "fc": "#f6dcc4", "block": "#d9efd2",
        "input": "#ffffff"}


def _side(n: int) -> float:
    """Spatial size to pixels: square root, so 224 and 7 both stay visible."""
    return 8 + 8.5 * math.sqrt(n)


def _thick(c: int) -> float:
    """Channels to pixels: logarithmic, so 3 and 2048 both stay visible."""
    return 3 + 5.5 * math.log2(max(c, 1) + 1)


def _bar(n: int) -> float:
    return 16 + 8 * math.log2(max(n, 1) + 1)


def towers(flow: Flow) -> bool:
    """AlexNet as published: convolutions in two groups (not depthwise) mean two towers."""
    return any(n.kind == "conv" and n.groups == 2 and n.module.in_channels > 2
               for n in flow.nodes)


def _caption(u: Unit, split: bool) -> list[str]:
    if u.kind == "block":
        head = type(u.module).__name__ + (f" x {u.count}" if u.count > 1 else "")
        return [head, u.name]
    n = u.node
    text = layer_text(n)
    if u.sparse:
        text = f"{n.kernel[0]}x{n.kernel[1]} conv, {u.shape[0]} (sparse)"
    elif n.kind == "RBFOutput":
        text = "RBF output"
    parts = [p.strip() for p in text.split(",")]
    lines = [parts[0], ", ".join(parts[1:])] if len(parts) > 1 else parts
    if split and len(u.shape) == 3:
        lines.append(f"2 towers x {u.shape[0] // 2}")
    return [ln for ln in lines if ln]


def draw_volumes(flow: Flow) -> Canvas:
    c = Canvas()
    split = towers(flow)
    items = [("input", flow.profile.input_size, None)] + [(u.kind, u.shape, u)
                                                          for u in units(flow)]
    title = f"{flow.name}: " + ("two towers (convolutions in groups of 2)" if split
                                else "feature maps, input to output")
    c.text(0, -44, title, size=15, bold=True, anchor="start", cls="model")
    total = flow.profile.total_params
    c.text(0, -26, f"{total:,} parameters; boxes: height and depth follow HxW (square root), "
           "thickness the channels (log)", size=11, anchor="start", fill="#555", cls="total",
           data={"params": str(total)})
    x, row_top = 0.0, 0.0
    row_h = 0.0
    prev = None  # (front-face box, kernel target) of the item before, in this row
    for kind, shape, u in items:
        split_here = split and u is not None and (len(shape) == 3 or (
            len(shape) == 1 and u.node is not None and u.node.kind == "fc"
            and u is not items[-1][2]))
        geom = _geometry(shape, split_here)
        cap = _caption(u, split) if u is not None else ["input"]
        cap_w = max(text_width(s, CAP) for s in cap)
        label_w = text_width(shape_text(shape), 11)
        w = max(geom["w"], cap_w, label_w)
        if x > 0 and x + w > ROW_W:
            x, row_top, prev = 0.0, row_top + row_h + 60, None
            row_h = 0.0
        top = row_top + 3 * CAP + 14
        bx = x + (w - geom["w"]) / 2
        face = _draw(c, kind if kind != "layer" else (u.node.kind if u.node else "conv"),
                     bx, top, geom, u, shape)
        for i, s in enumerate(cap):
            c.text(x + w / 2, row_top + (i + 1) * (CAP + 3), s, size=CAP,
                   bold=(i == 0 and kind == "block"), cls="caption")
        base = top + geom["h"] + 18
        data = {"name": _label_name(u)}
        c.text(x + w / 2, base, shape_text(shape), size=11, fill="#123", cls="shape",
               data=data)
        if u is not None and u.node is not None and u.node.kernel and prev is not None \
                and len(shape) == 3:
            _kernel(c, prev, face, u)
        prev = face
        row_h = max(row_h, base - row_top)
        x += w + GAP
    return c


def _label_name(u: Unit | None) -> str:
    """The module whose output the label shows: a single layer's own (its container may
    flatten it), a block's or a sparse layer's whole."""
    if u is None:
        return "input"
    return u.node.name if u.kind == "layer" and not u.sparse else u.name


def _geometry(shape: tuple[int, ...], split: bool) -> dict:
    if len(shape) == 3:
        ch, hh, ww = shape
        t = _thick(ch // 2 if split else ch)
        h, d = _side(hh), _side(ww) * 0.45
        towers_gap = 10 if split else 0
        return {"w": t + d, "h": (2 * h + towers_gap + d) if split else h + d, "t": t,
                "fh": h, "d": d, "split": split, "gap": towers_gap}
    n = shape[0] if shape else 1
    h = _bar(n // 2 if split else n)
    return {"w": 12 + 6, "h": (2 * h + 10 + 6) if split else h + 6, "t": 12, "fh": h, "d": 6,
            "split": split, "gap": 10}


def _box(c: Canvas, x: float, y: float, t: float, h: float, d: float, fill: str,
         data: dict) -> tuple[float, float, float, float]:
    """A cuboid whose front face is (x, y+d, t, h); returns that face."""
    fy = y + d
    c.poly([(x, fy), (x + d, y), (x + d + t, y), (x + t, fy)], fill=_shade(fill, 0.93),
           stroke="#445", width=0.8)
    c.poly([(x + t, fy), (x + t + d, y), (x + t + d, y + h), (x + t, fy + h)],
           fill=_shade(fill, 0.82), stroke="#445", width=0.8)
    c.rect(x, fy, t, h, fill=fill, stroke="#445", width=0.8, cls="volume", data=data)
    return (x, fy, t, h)


def _draw(c: Canvas, kind: str, x: float, y: float, g: dict, u: Unit | None,
          shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    fill = FILL.get(kind, "#eadff5")
    data = {"name": _label_name(u), "shape": shape_text(shape)}
    if u is not None and u.count > 1:
        data["count"] = str(u.count)
    if not g["split"]:
        return _box(c, x, y, g["t"], g["fh"], g["d"], fill, data)
    upper = _box(c, x, y, g["t"], g["fh"], g["d"], fill, {**data, "tower": "1"})
    _box(c, x, y + g["fh"] + g["gap"], g["t"], g["fh"], g["d"], fill, {**data, "tower": "2"})
    return upper


def _kernel(c: Canvas, prev: tuple, face: tuple, u: Unit) -> None:
    """The kernel as a small square in the map before, lines to a point in this map."""
    px, py, pw, ph = prev
    k = u.node.kernel[0]
    in_side = max(u.node.shape[-1] * u.node.stride, k)
    s = max(4.0, min(ph * 0.6, ph * k / in_side))
    kx, ky = px + pw * 0.55 - s / 2, py + ph * 0.35
    c.rect(kx, ky, s, s, fill="#f4a261", stroke="#a0522d", width=0.8, cls="kernel")
    fx, fy, fw, fh = face
    tx, ty = fx + fw * 0.5, fy + fh * 0.45
    for cx, cy in ((kx + s, ky), (kx + s, ky + s)):
        c.line([(cx, cy), (tx, ty)], stroke="#a0522d", width=0.7)


def _shade(hex_colour: str, f: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"#{int(r * f):02x}{int(g * f):02x}{int(b * f):02x}"
