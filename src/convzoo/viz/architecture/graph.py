"""The data flow of a real module, traced once on the meta device, with the profile `summary`
prints taken in the same forward pass.

Nodes are the layers a lecture draws: convolutions, fully connected layers, pooling, and the
points where branches meet (a sum, a concatenation, a product). Batch norm, activations,
dropout and LRN are folded into the node before them (`post`), as the papers' figures do.
Every node keeps the qualified name of its module, so its numbers are the profile row's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakTensorKeyDictionary

from ...analysis.meta import build_meta
from ...analysis.profile import LayerRow, Profile, profile_model

aten = torch.ops.aten

_MERGES = {aten.add: "add", aten.sub: "add", aten.mul: "mul", aten.cat: "concat",
           aten.stack: "concat"}
_FOLD_NAMES = {"BatchNorm1d": "BN", "BatchNorm2d": "BN", "GroupNorm": "GN", "LayerNorm": "LN",
               "LRN": "LRN", "LocalResponseNorm": "LRN", "Dropout": "dropout",
               "Dropout2d": "dropout", "DropPath": "drop path", "ScaledTanh": "tanh"}
_SILENT = (nn.Identity, nn.Flatten, nn.Unflatten)


def _fold_label(m: nn.Module) -> str | None:
    """The short name a folded module adds to the node before it; None for a node."""
    name = type(m).__name__
    if name in _FOLD_NAMES:
        return _FOLD_NAMES[name]
    if isinstance(m, _SILENT):
        return ""
    if type(m).__module__ == "torch.nn.modules.activation":
        return name
    return None


def _kind(m: nn.Module) -> str:
    if isinstance(m, nn.Conv2d):
        return "conv"
    if isinstance(m, nn.Linear):
        return "fc"
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return "pool"
    return type(m).__name__


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[-1]))


@dataclass
class Node:
    id: int
    kind: str  # conv, fc, pool, add, mul, concat, input, or a module's class name
    name: str  # the module's qualified name ("" for a merge)
    shape: tuple[int, ...]  # output shape without the batch
    preds: list[int]
    owner: str  # the module whose forward made it (a merge), or the module itself
    module: nn.Module | None = None
    row: LayerRow | None = None
    post: list[str] = field(default_factory=list)  # folded: BN, ReLU, ...

    @property
    def is_merge(self) -> bool:
        return self.kind in ("add", "mul", "concat")

    @property
    def weighted(self) -> bool:
        return self.kind in ("conv", "fc") or bool(self.row and self.row.params and
                                                   self.kind not in ("pool",))

    @property
    def kernel(self) -> tuple[int, int] | None:
        k = getattr(self.module, "kernel_size", None)
        return _pair(k) if k is not None and not isinstance(self.module, nn.Linear) else None

    @property
    def stride(self) -> int:
        s = getattr(self.module, "stride", 1)
        return _pair(s)[0] if s is not None else 1

    @property
    def groups(self) -> int:
        return int(getattr(self.module, "groups", 1) or 1)


def shape_text(shape: tuple[int, ...]) -> str:
    """CxHxW for a map, N for a vector: the label every drawing prints under a layer."""
    return "x".join(map(str, shape))


def layer_text(n: Node) -> str:
    """'3x3 conv, 64, /2' as ResNet's Figure 3 writes it; pools and merges alike."""
    m = n.module
    if n.kind == "conv":
        k = n.kernel or (1, 1)
        text = f"{k[0]}x{k[1]} conv, {m.out_channels}"
        if n.groups > 1:
            text = (f"{k[0]}x{k[1]} depthwise conv, {m.out_channels}"
                    if n.groups == m.in_channels == m.out_channels
                    else f"{text}, {n.groups} groups")
    elif n.kind == "fc":
        text = f"fc {m.out_features}"
    elif n.kind == "pool":
        kind = "max" if "Max" in type(m).__name__ else "avg"
        if "Adaptive" in type(m).__name__:
            return f"global {kind} pool" if n.shape[-2:] == (1, 1) else f"adaptive {kind} pool"
        k = _pair(m.kernel_size)
        text = f"{k[0]}x{k[1]} {kind} pool"
    elif n.kind == "concat":
        return "concatenation"
    elif n.kind == "add":
        return "+"
    elif n.kind == "mul":
        return "x"
    elif n.kind == "input":
        return "input"
    else:
        return n.kind
    return text + (f", /{n.stride}" if n.stride > 1 else "")


@dataclass
class Flow:
    """A model's traced data flow and its profile (the same numbers `summary` prints)."""

    model: nn.Module
    name: str
    profile: Profile
    nodes: list[Node]
    shapes: dict[str, tuple[int, ...]]  # every module's output shape (no batch), first call
    spans: dict[str, tuple[int, int]]  # node ids [first, last) made while a module ran
    entry: dict[str, list[int]]  # nodes feeding a module's input, first call

    def succs(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for p in n.preds:
                out[p].append(n.id)
        return out

    def inside(self, qual: str) -> list[Node]:
        a, b = self.spans.get(qual, (0, 0))
        return self.nodes[a:b]


class _Tracer(TorchDispatchMode):
    """Which nodes each tensor comes from; a merge node where an add, product or
    concatenation outside every node module joins tensors from different nodes."""

    def __init__(self) -> None:
        super().__init__()
        self.prov = WeakTensorKeyDictionary()
        self.nodes: list[Node] = []
        self.inside = 0  # >0 while a node module runs: its inner ops make no nodes
        self.stack: list[str] = [""]

    def of(self, t: Any) -> tuple[int, ...]:
        return self.prov.get(t, ()) if isinstance(t, torch.Tensor) else ()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.inside:  # a node module's own ops: its post-hook names the output
            return out
        sources = []
        for a in args:
            if isinstance(a, torch.Tensor):
                s = self.prov.get(a)
                if s:
                    sources.append(s)
            elif isinstance(a, (list, tuple)):  # cat and stack take a list
                sources += [self.prov.get(t) for t in a if isinstance(t, torch.Tensor)
                            and self.prov.get(t)]
        if not sources:
            return out
        merged: tuple[int, ...] = tuple(dict.fromkeys(i for s in sources for i in s))
        kind = _MERGES.get(func.overloadpacket)
        if kind and len(set(sources)) > 1:
            first = tree_flatten(out)[0][0]
            node = Node(len(self.nodes), kind, "", tuple(first.shape[1:]), list(merged),
                        self.stack[-1])
            self.nodes.append(node)
            merged = (node.id,)
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.prov[t] = merged
        return out


def trace_flow(
    model_or_name: nn.Module | str, input_size: tuple[int, int, int] | None = None,
    **model_kwargs: Any,
) -> Flow:
    """Trace the data flow and take the profile, in one eval-mode pass on the meta device.
    An input size with 0 channels (`--input 160x160`) takes the model's own channels."""
    open_channels = input_size is not None and input_size[0] == 0
    model, name, _ = build_meta(model_or_name, None, **model_kwargs)
    if open_channels:
        input_size = (model.default_input_size[0], *input_size[1:])
    model, name, input_size = build_meta(model, input_size)
    name = model_or_name if isinstance(model_or_name, str) else name
    tr = _Tracer()
    shapes: dict[str, tuple[int, ...]] = {}
    spans: dict[str, tuple[int, int]] = {}
    entry: dict[str, list[int]] = {}
    starts: dict[str, list[int]] = {}
    folds = {q: _fold_label(m) for q, m in model.named_modules()}
    rows_like = {q for q, m in model.named_modules()
                 if q and folds[q] is None and (next(m.children(), None) is None
                                               or next(m.parameters(False), None) is not None)}

    def pre(qual: str):
        def hook(mod: nn.Module, args: tuple) -> None:
            x = args[0] if args else None
            if not qual and isinstance(x, torch.Tensor) and not tr.of(x):
                tr.nodes.append(Node(len(tr.nodes), "input", "", tuple(x.shape[1:]), [], ""))
                tr.prov[x] = (tr.nodes[-1].id,)
            tr.stack.append(qual)
            starts.setdefault(qual, []).append(len(tr.nodes))
            entry.setdefault(qual, list(tr.of(x)))
            if qual in rows_like:
                tr.inside += 1
        return hook

    def post(qual: str):
        def hook(mod: nn.Module, args: tuple, out: Any) -> None:
            tr.stack.pop()
            first = next((t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)), None)
            x = args[0] if args else None
            if qual in rows_like:
                tr.inside -= 1
                if tr.inside == 0 and first is not None:
                    node = Node(len(tr.nodes), _kind(mod), qual, tuple(first.shape[1:]),
                                list(tr.of(x)), qual, mod)
                    tr.nodes.append(node)
                    for t in tree_flatten(out)[0]:
                        if isinstance(t, torch.Tensor):
                            tr.prov[t] = (node.id,)
            elif folds.get(qual) and tr.inside == 0:
                src = tr.of(x)
                if len(src) == 1 and tr.nodes[src[0]].kind != "input":
                    post_list = tr.nodes[src[0]].post
                    if not post_list or post_list[-1] != folds[qual]:
                        post_list.append(folds[qual])
            begin = starts[qual].pop()
            if first is not None:
                shapes.setdefault(qual, tuple(first.shape[1:]))
            spans.setdefault(qual, (begin, len(tr.nodes)))
        return hook

    handles = []
    for qual, mod in model.named_modules():
        handles.append(mod.register_forward_pre_hook(pre(qual)))
        handles.append(mod.register_forward_hook(post(qual)))
    try:
        with torch.no_grad(), tr:
            prof = profile_model(model, input_size, 1, name)
    finally:
        for h in handles:
            h.remove()
    # containers iterated rather than called (a ModuleList of stages) span their children
    for qual, _ in model.named_modules():
        if qual not in spans:
            kids = [q for q in spans if q.startswith(qual + ".")]
            if kids:
                first = min(kids, key=lambda q: spans[q])
                spans[qual] = (spans[first][0], max(spans[q][1] for q in kids))
                entry.setdefault(qual, entry.get(first, []))
    rows = {r.name: r for r in prof.layers}
    for n in tr.nodes:
        n.row = rows.get(n.name)
    return Flow(model, name, prof, tr.nodes, shapes, spans, entry)
