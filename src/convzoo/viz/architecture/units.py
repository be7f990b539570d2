"""What a drawing shows one at a time: single layers, and blocks (a residual block, an
Inception module, MBConv) with their insides, repeated blocks collapsed to one and "x N"."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .graph import Flow, Node

_PLAIN = (nn.Sequential, nn.ModuleList)


@dataclass
class Unit:
    kind: str  # "layer" or "block"
    name: str  # the module's qualified name
    module: nn.Module
    node: Node | None  # the layer's node (layers only)
    shape: tuple[int, ...]  # output, no batch
    count: int = 1  # identical blocks in a row, drawn once
    sparse: bool = False  # parallel convolutions of one input, concatenated (LeNet-5's C3)

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def key(self) -> tuple:
        return (type(self.module).__name__, self.shape, self.params)


def _layers(flow: Flow, qual: str) -> list[Node]:
    return [n for n in flow.inside(qual) if not n.is_merge]


def _sparse(flow: Flow, qual: str) -> bool:
    """Parallel convolutions of one input, concatenated: one layer (LeNet-5's C3)."""
    nodes = flow.inside(qual)
    convs = [n for n in nodes if not n.is_merge]
    merges = [n for n in nodes if n.is_merge]
    return (len(merges) == 1 and merges[0].kind == "concat" and len(convs) > 1
            and all(n.kind == "conv" for n in convs)
            and len({tuple(n.preds) for n in convs}) == 1
            and sorted(merges[0].preds) == sorted(n.id for n in convs))


def _children(flow: Flow, qual: str, m: nn.Module) -> list[tuple[str, nn.Module]]:
    """Children that ran, in the order they ran."""
    kids = [(f"{qual}.{k}" if qual else k, c) for k, c in m.named_children()]
    ran = [(q, c) for q, c in kids if q in flow.spans]
    return sorted(ran, key=lambda qc: flow.spans[qc[0]])


def _expand(flow: Flow, qual: str, m: nn.Module, part: bool, head: bool) -> list[Unit]:
    layers = _layers(flow, qual)
    merges = [n for n in flow.inside(qual) if n.is_merge]
    if not layers:
        return []
    shape = flow.shapes.get(qual, layers[-1].shape)
    if len(layers) == 1 and not merges:
        return [Unit("layer", qual, m, layers[0], layers[0].shape)]
    if _sparse(flow, qual):
        return [Unit("layer", qual, m, layers[0], shape, sparse=True)]
    kids = _children(flow, qual, m)
    plain = isinstance(m, _PLAIN) and not any(n.owner == qual for n in merges)
    # a stage, a head, or a plain container of blocks is opened; a block is drawn whole
    if part or head or (plain and all(len(_layers(flow, q)) > 1 for q, _ in kids)):
        out: list[Unit] = []
        for q, c in kids:
            out += _expand(flow, q, c, False, head)
        return out
    return [Unit("block", qual, m, None, shape)]


def units(flow: Flow, collapse: bool = True) -> list[Unit]:
    """The model's units from input to output (stem, stages, head), identical blocks in a row
    collapsed when `collapse`."""
    model = flow.model
    parts: list[tuple[str, nn.Module, bool]] = []
    if all(hasattr(model, a) for a in ("stem", "stages", "head")):
        parts.append(("stem", model.stem, False))
        parts += [(f"stages.{i}", s, False) for i, s in enumerate(model.stages)]
        parts.append(("head", model.head, True))
    else:
        parts = [(q, c, False) for q, c in _children(flow, "", model)]
    out: list[Unit] = []
    for qual, m, head in parts:
        if qual in flow.spans:
            out += _expand(flow, qual, m, True, head)
    if not collapse:
        return out
    merged: list[Unit] = []
    for u in out:
        if merged and u.kind == "block" and merged[-1].kind == "block" \
                and merged[-1].key() == u.key():
            merged[-1].count += 1
        else:
            merged.append(u)
    return merged


def blocks(flow: Flow) -> list[Unit]:
    """Every block of the model, uncollapsed."""
    return [u for u in units(flow, collapse=False) if u.kind == "block"]


def block_kind(flow: Flow, u: Unit) -> tuple:
    """Blocks of one kind: the same class, the same joins, the same number of branches
    leaving the input (a residual block with an identity shortcut and one with a projection
    are two kinds)."""
    inside = flow.inside(u.name)
    entry = set(flow.entry.get(u.name, ()))
    starts = tuple(sorted(n.kind for n in inside if set(n.preds) & entry))
    merges = tuple(sorted(n.kind for n in inside if n.is_merge))
    return (type(u.module).__name__, merges, starts)
