"""`blocks`: the inside of a block as the papers draw it: each layer a box with its kernel,
stride and output shape, branches side by side, joins as +, x or a concatenation, and
shortcuts as they are (identity, projection, zero padding)."""

from __future__ import annotations

from ...errors import UserInputError
from .canvas import Canvas
from .graph import Flow, Node, layer_text, shape_text
from .units import Unit, block_kind, blocks

W, H, LANE, ROW = 190, 46, 215, 74
COLOURS = {"conv": "#dbe8f7", "fc": "#f6dcc4", "pool": "#e8e8e8", "concat": "#e3f1dc",
           "input": "#ffffff"}
MAX_BLOCKS = 4


def pick_blocks(flow: Flow, name: str | None) -> list[Unit]:
    """The block named `name`, or the first block of each kind (at most MAX_BLOCKS)."""
    found = blocks(flow)
    if name:
        hit = [u for u in found if u.name == name]
        if not hit:
            close = ", ".join(u.name for u in found[:8])
            raise UserInputError(f"{flow.name} has no block {name!r}; its blocks are "
                                 f"{close}{' ...' if len(found) > 8 else ''}")
        return hit
    if not found:
        raise UserInputError(f"{flow.name} has no blocks (its stages are single layers): "
                             "use --style volumes or columns")
    seen, out = set(), []
    for u in found:
        k = block_kind(flow, u)
        if k not in seen:
            seen.add(k)
            out.append(u)
    return out[:MAX_BLOCKS]


def draw_blocks(flow: Flow, name: str | None = None) -> Canvas:
    c = Canvas()
    x = 0.0
    chosen = pick_blocks(flow, name)
    c.text(0, -58, f"{flow.name}: {len(chosen)} block{'s' * (len(chosen) > 1)}", size=15,
           bold=True, anchor="start", cls="model")
    total = flow.profile.total_params
    c.text(0, -40, f"{total:,} parameters in the whole model", size=11, anchor="start",
           fill="#555", cls="total", data={"params": str(total)})
    for u in chosen:
        x = _block(c, flow, u, x) + 50
    return c


def _layout(flow: Flow, u: Unit) -> tuple[list[Node], dict[int, tuple[float, int]]]:
    """(nodes, id -> (lane, layer)): a chain keeps its lane; a fork opens new lanes to the
    right (the larger output keeps the lane of two; three or more keep the order they ran)."""
    inside = flow.inside(u.name)
    entry = flow.entry.get(u.name) or [inside[0].preds[0]]
    src = flow.nodes[entry[0]]
    nodes = [src, *inside]
    succ: dict[int, list[Node]] = {n.id: [] for n in nodes}
    for n in inside:
        for p in n.preds:
            if p in succ:
                succ[p].append(n)
    place: dict[int, tuple[float, int]] = {src.id: (0.0, 0)}
    used: set[tuple[float, int]] = {(0.0, 0)}
    heir: dict[int, int] = {}  # node -> the successor that keeps its lane
    reach: dict[int, int] = {}  # the longest chain from a node to the block's end
    for n in reversed(nodes):
        reach[n.id] = 1 + max((reach[m.id] for m in succ[n.id]), default=0)
    for n in nodes:
        s = succ[n.id]
        if len(s) == 2:
            # the main path keeps the lane: not a 1x1 gate (squeeze-and-excitation), the
            # longer way to the join (not the shortcut), then the larger output
            heir[n.id] = max(s, key=lambda m: (m.shape[-2:] != (1, 1) or len(m.shape) < 3,
                                               reach[m.id], _numel(m.shape), -m.id)).id
        elif s:
            heir[n.id] = s[0].id
    lanes = 1
    for n in inside:
        preds = [p for p in n.preds if p in place]
        layer = max((place[p][1] for p in preds), default=0) + 1
        if n.is_merge:
            if n.kind == "concat":
                lane = sum(place[p][0] for p in preds) / len(preds)
            else:
                lane = place[max(preds, key=lambda p: _numel(flow.nodes[p].shape))][0]
        else:
            p = preds[0] if preds else src.id
            lane = place[p][0] if heir.get(p) == n.id else float(lanes)
        while (lane, layer) in used:
            lane = float(lanes)
        lanes = max(lanes, int(lane) + 1)
        place[n.id] = (lane, layer)
        used.add((lane, layer))
    return nodes, place


def _numel(shape: tuple[int, ...]) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


def _block(c: Canvas, flow: Flow, u: Unit, x0: float) -> float:
    nodes, place = _layout(flow, u)
    lo = min(p[0] for p in place.values())
    hi = max(p[0] for p in place.values())
    pos = {i: (x0 + (lane - lo) * LANE, layer * ROW) for i, (lane, layer) in place.items()}
    width = (hi - lo) * LANE + W
    c.text(x0, -18, f"{u.name} ({type(u.module).__name__})", size=12.5, bold=True,
           anchor="start", cls="block", data={"name": u.name})
    bottom = 0.0
    for n in nodes:
        x, y = pos[n.id]
        bottom = max(bottom, y + H)
        _node(c, flow, n, x, y, first=n is nodes[0])
    for n in nodes[1:]:
        for p in n.preds:
            if p in pos:
                _edge(c, pos, place, p, n.id, flow)
    params = u.params
    c.text(x0, bottom + 22, f"{params:,} parameters in this block", size=11, anchor="start",
           fill="#333", cls="block-params", data={"params": str(params), "name": u.name})
    return x0 + width


def _node(c: Canvas, flow: Flow, n: Node, x: float, y: float, first: bool) -> None:
    data = {"id": f"n{n.id}", "kind": "input" if first else n.kind,
            "out": shape_text(n.shape), "name": n.name or n.owner}
    if n.kernel:
        data["kernel"] = f"{n.kernel[0]}x{n.kernel[1]}"
    shape_name = n.name or n.owner
    if n.kind in ("add", "mul") and not first:
        r = 15
        c.circle(x + W / 2, y + H / 2, r, fill="#fff5cc", stroke="#555", cls="node join",
                 data=data)
        c.text(x + W / 2, y + H / 2 + 6, "+" if n.kind == "add" else "\u00d7", size=18,
               bold=True)
        # both on the left: edges come into the circle from above and from the right
        c.text(x + W / 2 - r - 8, y + H / 2 + (0 if n.post else 4), shape_text(n.shape),
               size=10.5, anchor="end", fill="#234", cls="shape", data={"name": shape_name})
        if n.post:
            c.text(x + W / 2 - r - 8, y + H / 2 + 13, ", ".join(n.post), size=9.5,
                   anchor="end", fill="#666")
        return
    label = f"input from {n.name or n.owner or 'the input'}" if first else layer_text(n)
    if n.kind == "PadShortcut":
        label = "zero-pad channels (option A)"
    c.rect(x, y, W, H, fill=COLOURS["input" if first else n.kind] if (
        first or n.kind in COLOURS) else "#eee8f7", stroke="#555", radius=4,
        dash=first, cls="node", data=data)
    c.text(x + W / 2, y + 16, label, size=11.5 if not first else 10.5)
    if n.post and not first:
        c.text(x + W / 2, y + 29, ", ".join(n.post), size=9.5, fill="#666")
    c.text(x + W / 2, y + 41 if not first else y + 33, shape_text(n.shape), size=10.5,
           fill="#234", cls="shape", data={"name": shape_name} if shape_name else {})


def _edge(c: Canvas, pos, place, a: int, b: int, flow: Flow) -> None:
    (ax, ay), (bx, by) = pos[a], pos[b]
    join = flow.nodes[b].kind in ("add", "mul")
    sx, sy = ax + W / 2, ay + H
    tx, ty = bx + W / 2, (by + H / 2 - 15) if join else by
    data = {"from": f"n{a}", "to": f"n{b}"}
    blocked = place[a][0] == place[b][0] and place[b][1] - place[a][1] > 1 and any(
        v[0] == place[a][0] and place[a][1] < v[1] < place[b][1] for v in place.values())
    if blocked:  # a shortcut past the layers in its lane: around their right side
        side = ax + W + 14
        c.line([(ax + W, ay + H / 2), (side, ay + H / 2), (side, by + H / 2),
                (tx + (15 if join else W / 2), by + H / 2)], stroke="#444", width=1.3,
               arrow=True, cls="edge shortcut", data=data)
        return
    if abs(sx - tx) < 1:
        c.line([(sx, sy), (tx, ty)], stroke="#444", width=1.3, arrow=True, cls="edge",
               data=data)
        return
    mid = by - (ROW - H) / 2
    if join:  # into the side of the circle
        c.line([(sx, sy), (sx, by + H / 2), (tx + (15 if sx > tx else -15), by + H / 2)],
               stroke="#444", width=1.3, arrow=True, cls="edge", data=data)
        return
    c.line([(sx, sy), (sx, mid), (tx, mid), (tx, ty)], stroke="#444", width=1.3, arrow=True,
           cls="edge", data=data)
