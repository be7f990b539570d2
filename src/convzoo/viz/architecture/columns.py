"""`columns`: ResNet's Figure 3, one column per model, one box per layer of the main path,
shortcuts as arcs beside the column, dotted where the dimensions change."""

from __future__ import annotations

from ...errors import UserInputError
from .canvas import Canvas, text_width
from .graph import Flow, Node, layer_text, shape_text

BOX_W, BOX_H, GAP = 170, 20, 8
FONT = 11.5
COLOURS = {"conv": "#dbe8f7", "fc": "#f6dcc4", "pool": "#e8e8e8"}


def main_path(flow: Flow) -> list[Node]:
    """The longest path, in layers, from the input to the output."""
    best: dict[int, tuple[int, int]] = {}  # node -> (layers up to it, the node before it)
    for n in flow.nodes:
        own = 0 if n.is_merge or n.kind == "input" else 1
        prev = max(((best[p][0], p) for p in n.preds), default=(0, -1))
        best[n.id] = (prev[0] + own, prev[1])
    path, i = [], flow.nodes[-1].id
    while i >= 0:
        path.append(flow.nodes[i])
        i = best[i][1]
    return path[::-1]


def check_chain(flow: Flow) -> None:
    """Columns draw chains with shortcuts; a model with other joins says which style fits."""
    for n in flow.nodes:
        if n.is_merge and (n.kind != "add" or len(n.preds) != 2):
            raise UserInputError(
                f"{flow.name} joins branches by {n.kind} ({n.owner or 'the model'}): "
                "--style columns draws chains with shortcuts (VGG, plain and residual nets); "
                "use --style blocks or volumes")


def _weighted(n: Node) -> bool:
    """A layer with weights: what the papers count in a network's depth."""
    return n.kind in ("conv", "fc") or (n.row is not None and n.row.params > 0
                                        and n.kind != "pool")


def draw_columns(flows: list[Flow]) -> Canvas:
    c = Canvas()
    x = 0.0
    for flow in flows:
        check_chain(flow)
        x = _column(c, flow, x) + 60
    return c


def _column(c: Canvas, flow: Flow, x0: float) -> float:
    path = main_path(flow)
    on_path = {n.id for n in path}
    boxes = [n for n in path if not n.is_merge and n.kind != "input"]
    c.text(x0 + BOX_W / 2, -34, flow.name, size=15, bold=True, cls="model")
    c.text(x0 + BOX_W / 2, -16, f"input {shape_text(flow.profile.input_size)}", size=FONT,
           fill="#555")
    top: dict[int, float] = {}  # node id -> y of its box
    y = 0.0
    for n in boxes:
        top[n.id] = y
        weighted = _weighted(n)
        c.rect(x0, y, BOX_W, BOX_H, fill=COLOURS.get(n.kind, "#eee8f7"), stroke="#555",
               radius=3, cls="layer weight" if weighted else "layer",
               data={"name": n.name, "kind": n.kind})
        c.text(x0 + BOX_W / 2, y + BOX_H / 2 + FONT * 0.36, layer_text(n), size=FONT,
               cls="label")
        c.text(x0 + BOX_W + 8, y + BOX_H / 2 + FONT * 0.36, shape_text(n.shape), size=9.5,
               anchor="start", fill="#666", cls="shape", data={"name": n.name})
        y += BOX_H + GAP
    # each add: an arc from where its shortcut leaves the path to where it joins
    after: dict[int, float] = {}  # path node id -> y of the gap after it
    last_y = -GAP / 2
    for n in path:
        if n.id in top:
            last_y = top[n.id] + BOX_H + GAP / 2
        after[n.id] = last_y
    for n in path:
        if not n.is_merge:
            continue
        main, side = (n.preds if n.preds[0] in on_path else n.preds[::-1])
        fork, changed, k = side, False, 0
        while fork not in on_path:  # back along the shortcut to the path
            changed = True
            fork = flow.nodes[fork].preds[0]
            k += 1
        changed = changed or flow.nodes[fork].shape != n.shape
        y0, y1 = after[fork], after[n.id]
        # on the left of the column: the right holds the output shapes
        bend = min(60.0, 18 + (y1 - y0) * 0.12)
        c.curve([(x0, y0), (x0 - 4 - bend, y0), (x0 - 4 - bend, y1), (x0, y1)],
                stroke="#444", width=1.3, dash=changed, arrow=True,
                cls="shortcut dotted" if changed else "shortcut",
                data={"from": flow.nodes[fork].name or "input", "to": n.owner})
    weights = sum(1 for n in boxes if _weighted(n))
    total = flow.profile.total_params
    c.text(x0 + BOX_W / 2, y + 14, f"{weights} weight layers", size=FONT, cls="count")
    c.text(x0 + BOX_W / 2, y + 30, f"{total:,} parameters", size=FONT, cls="total",
           data={"params": str(total)})
    return x0 + BOX_W + max(90, text_width("512x14x14", 9.5) + 70)
