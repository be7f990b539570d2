"""Receptive fields from the real modules: each layer's field, jump and start, and its depth.

A model runs once on the meta device (no memory) under a dispatch mode that sees every tensor
operation, so the fields follow whatever the forward code does: the branches of an Inception
module, the shortcut of a residual block, a strided slice, padding. Per spatial axis each tensor
carries

- `size`: the receptive field, in input pixels, of one of its positions;
- `jump`: how far apart, in input pixels, two neighbouring positions' fields are (the
  effective stride, the product of the strides so far);
- `lo`: where the first position's field begins (negative where it reaches into padding);
  `start` = lo + (size - 1) / 2 is its centre.

Through a layer with kernel k, stride s, padding p and dilation d (k' = d(k-1)+1):
size += (k'-1) * jump, lo -= p * jump, jump *= s.

Where branches meet (a sum, a concatenation, a product) the field is the smallest one that
holds every branch's field: the largest field over the branches. A squeeze-and-excitation gate
or any other 1x1 tensor broadcast over a larger map is left out of that union, although it sees
the whole input: it rescales channels, it does not widen what a position looks at. Global
pooling, a flatten and a fully connected layer see every position: their field is the union of
all positions' fields.

Fields are theoretical: they count the zero padding, so they may be wider than the input.
Depth, traced the same way, is the number of convolution and fully connected modules
(`nn.Conv2d`, `nn.Linear`) on the longest path from the input to the output, gates left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakTensorKeyDictionary

from ..errors import UserInputError
from .meta import build_meta, meta_call
from .profile import Profile, profile_model

aten = torch.ops.aten


@dataclass(frozen=True)
class Axis:
    """The receptive field along one spatial axis."""

    size: int
    jump: Fraction
    lo: Fraction

    @property
    def start(self) -> Fraction:
        return self.lo + Fraction(self.size - 1, 2)

    def layer(self, k: int, s: int, p: int, d: int = 1) -> Axis:
        span = d * (k - 1) + 1
        return Axis(int(self.size + (span - 1) * self.jump), self.jump * s, self.lo - p * self.jump)

    def over(self, n: int) -> Axis:
        """The union of the fields of n neighbouring positions (a global pool over n)."""
        return Axis(int(self.size + (n - 1) * self.jump), self.jump * max(n, 1), self.lo)


@dataclass(frozen=True)
class Field:
    h: Axis
    w: Axis
    grid: tuple[int, int]  # the spatial size of the tensor these fields describe
    depth: int = 0  # weight layers on the longest path so far
    merges: int = 0  # branch unions passed through on the way


@dataclass
class RFRow:
    """One module's output field; `name` is the module's qualified name, as in the profile."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    rf: tuple[int, int]  # (height, width) in input pixels
    jump: tuple[float, float]
    start: tuple[float, float]
    depth: int
    branches: bool  # True where the module unites branches: its field is their largest
    global_field: bool  # True where every output sees every input position (pooling, fc)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "output_shape": list(self.output_shape),
                "rf": list(self.rf), "jump": list(self.jump), "start": list(self.start),
                "depth": self.depth, "branches": self.branches,
                "global": self.global_field}


@dataclass
class RFTrace:
    model: str
    input_size: tuple[int, int, int]
    rows: list[RFRow]
    output: RFRow | None
    depth: int
    notes: list[str]


def _num(x: Fraction) -> float | int:
    return int(x) if x.denominator == 1 else float(x)


def _pair(v: Any, default: int | None = None) -> tuple[int, int]:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        if default is None:
            raise ValueError("missing pair")
        return default, default
    if isinstance(v, int):
        return v, v
    v = list(v)
    return (int(v[0]), int(v[-1])) if len(v) in (1, 2) else (int(v[-2]), int(v[-1]))


def _spatial(t: torch.Tensor) -> tuple[int, int] | None:
    # fields describe NCHW maps (and 5-d views of them, as local response norm makes)
    return (int(t.shape[-2]), int(t.shape[-1])) if t.dim() >= 4 else None


def _union(fields: list[Field], grid: tuple[int, int]) -> Field:
    """The smallest field holding every branch's, on the same grid."""
    def hull(axes: list[Axis]) -> Axis:
        lo = min(a.lo for a in axes)
        hi = max(a.lo + a.size - 1 for a in axes)
        return Axis(int(hi - lo + 1), max(a.jump for a in axes), lo)

    h = hull([f.h for f in fields])
    w = hull([f.w for f in fields])
    differ = len({(f.h, f.w) for f in fields}) > 1
    merges = max(f.merges for f in fields) + (1 if differ else 0)
    return Field(h, w, grid, max(f.depth for f in fields), merges)


def _collapse(f: Field) -> Field:
    """Every position seen at once: global pooling, flatten, a fully connected layer."""
    return Field(f.h.over(f.grid[0]), f.w.over(f.grid[1]), (1, 1), f.depth, f.merges)


class _Tracer(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.fields = WeakTensorKeyDictionary()
        self.weight_module = 0  # >0 while a Conv2d / Linear module runs: count its layer once
        self.counted: set[int] = set()
        self.notes: set[str] = set()

    def get(self, t: Any) -> Field | None:
        return self.fields.get(t) if isinstance(t, torch.Tensor) else None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        try:
            field = self._rule(func, args, kwargs, out)
        except (ValueError, IndexError, TypeError):
            field = None
            self.notes.add(f"{func} was not understood; its output keeps no field")
        if field is not None:
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    self.fields[t] = field
        return out

    def _rule(self, func, args, kwargs, out) -> Field | None:
        x = args[0] if args else None
        fx = self.get(x)
        packet = func.overloadpacket
        first_out = tree_flatten(out)[0][0] if tree_flatten(out)[0] else None
        if packet is aten.convolution and fx is not None:
            if args[6]:  # transposed
                self.notes.add("transposed convolutions are taken as pointwise")
                return fx
            kh, kw = args[1].shape[-2:]
            (sh, sw), (ph, pw), (dh, dw) = _pair(args[3]), _pair(args[4]), _pair(args[5])
            return self._spatial_layer(fx, first_out, (kh, kw), (sh, sw), (ph, pw), (dh, dw),
                                       weight=True)
        if packet in (aten.max_pool2d_with_indices, aten.max_pool2d, aten.avg_pool2d) \
                and fx is not None:
            # (input, kernel, stride=[] meaning the kernel, padding=0, dilation=1 (max only))
            k = _pair(args[1])
            s = _pair(args[2], k[0]) if len(args) > 2 and args[2] else k
            p = _pair(args[3]) if len(args) > 3 else (0, 0)
            d = _pair(args[4]) if len(args) > 4 and packet is not aten.avg_pool2d else (1, 1)
            return self._spatial_layer(fx, first_out, k, s, p, d)
        if packet in (aten._adaptive_avg_pool2d, aten.adaptive_max_pool2d,
                      aten.adaptive_avg_pool2d) and fx is not None:
            return self._adaptive(fx, first_out)
        if packet is aten.slice and fx is not None:
            return self._slice(fx, x, args, first_out)
        if packet is aten.constant_pad_nd and fx is not None:
            pad = list(args[1])
            pw = pad[0] if len(pad) >= 2 else 0
            ph = pad[2] if len(pad) >= 4 else 0
            return replace(fx, h=replace(fx.h, lo=fx.h.lo - ph * fx.h.jump),
                           w=replace(fx.w, lo=fx.w.lo - pw * fx.w.jump),
                           grid=_spatial(first_out) or fx.grid)
        return self._generic(func, args, kwargs, first_out)

    def _count(self, f: Field) -> int:
        # A weight layer adds one to the depth when a Conv2d or Linear module runs it.
        return f.depth + (1 if self.weight_module > 0 else 0)

    def _spatial_layer(self, fx: Field, out: torch.Tensor, k, s, p, d, weight=False) -> Field:
        h = fx.h.layer(k[0], s[0], p[0], d[0])
        w = fx.w.layer(k[1], s[1], p[1], d[1])
        depth = self._count(fx) if weight else fx.depth
        return Field(h, w, _spatial(out) or fx.grid, depth, fx.merges)

    def _adaptive(self, fx: Field, out: torch.Tensor) -> Field:
        n_h, n_w = fx.grid
        m_h, m_w = _spatial(out) or (1, 1)
        if (m_h, m_w) == (1, 1):
            return _collapse(fx)

        def axis(a: Axis, n: int, m: int) -> Axis:
            # bin i covers [floor(i n / m), ceil((i+1) n / m)): the widest bin is the kernel.
            # Where m does not divide n the bins overlap, so their starts are not n / m apart:
            # the first starts at 0 and the last at n - width, which puts the m starts
            # (n - width) / (m - 1) apart on average (8 -> 7: bins of 2, one apart, not 8/7).
            width = max(-(-(i + 1) * n // m) - (i * n // m) for i in range(m))
            step = Fraction(n, m) if n % m == 0 or m == 1 else Fraction(n - width, m - 1)
            return Axis(int(a.size + (width - 1) * a.jump), a.jump * step, a.lo)

        return Field(axis(fx.h, n_h, m_h), axis(fx.w, n_w, m_w), (m_h, m_w), fx.depth, fx.merges)

    def _slice(self, fx: Field, x: torch.Tensor, args, out: torch.Tensor) -> Field:
        dim = args[1] if len(args) > 1 else 0
        dim = dim % x.dim()
        if dim < x.dim() - 2:  # channels or batch: the field stays
            return replace(fx, grid=_spatial(out) or fx.grid)
        start = args[2] if len(args) > 2 and args[2] is not None else 0
        step = args[4] if len(args) > 4 else 1
        n = x.shape[dim]
        start = start + n if start < 0 else min(start, n)
        which = "h" if dim == x.dim() - 2 else "w"
        a: Axis = getattr(fx, which)
        moved = Axis(a.size, a.jump * step, a.lo + start * a.jump)
        return replace(fx, grid=_spatial(out) or fx.grid, **{which: moved})

    def _generic(self, func, args, kwargs, out) -> Field | None:
        """Elementwise ops, concatenation, views, matrix products: unite the inputs' fields."""
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        fields = [f for f in (self.get(t) for t in tensors) if f is not None]
        if not fields:
            return None
        big = [f for f in fields if f.grid != (1, 1)]
        fields = big or fields  # 1x1 gates broadcast over a map do not widen its field
        packet = func.overloadpacket
        grid = _spatial(out) if isinstance(out, torch.Tensor) else None
        grids = {f.grid for f in fields}
        if packet in (aten.mean, aten.sum, aten.amax, aten.max, aten.amin):
            dims = args[1] if len(args) > 1 else None
            x = args[0]
            spatial_dims = {x.dim() - 2, x.dim() - 1}
            if dims is None or spatial_dims <= {d % x.dim() for d in dims}:
                fields = [_collapse(f) for f in fields]
                grid, grids = (1, 1), {(1, 1)}
        if len(grids) > 1 or grid is None or grid not in grids:
            # the spatial layout is gone (flatten, a fully connected layer) or cannot be
            # followed: every position counts
            if grid is not None and grid != (1, 1) and len(grids) == 1:
                self.notes.add(f"{func} changes {next(iter(grids))} to {grid}; its field is "
                               "taken as the whole input")
            fields = [_collapse(f) if f.grid != (1, 1) else f for f in fields]
            grid = (1, 1)
        merged = _union(fields, grid) if len(fields) > 1 else replace(fields[0], grid=grid)
        if packet in (aten.addmm, aten.mm, aten.bmm, aten.matmul, aten.linear):
            merged = replace(merged, depth=self._count(merged))
        return merged


def _first_tensor(out: Any) -> torch.Tensor | None:
    flat = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
    return flat[0] if flat else getattr(out, "logits", None)


def _row(name: str, mod: nn.Module, t: torch.Tensor, f: Field, f_in: Field | None,
         input_size: tuple[int, int, int]) -> RFRow:
    whole = f.grid == (1, 1) and (f.h.size >= input_size[1] and f.w.size >= input_size[2])
    return RFRow(
        name=name, type=type(mod).__name__, output_shape=tuple(t.shape),
        rf=(f.h.size, f.w.size), jump=(_num(f.h.jump), _num(f.w.jump)),
        start=(_num(f.h.start), _num(f.w.start)), depth=f.depth,
        branches=f_in is not None and f.merges > f_in.merges,
        global_field=whole or (f.grid == (1, 1) and t.dim() <= 2),
    )


def _forward(model: nn.Module, input_size: tuple[int, int, int]) -> Any:
    model.eval()
    return meta_call(model, torch.empty(1, *input_size, device="meta"))


def trace_fields(
    model_or_name: nn.Module | str, input_size: tuple[int, int, int] | None = None, *,
    run: Callable[[nn.Module, tuple[int, int, int]], Any] | None = None, **model_kwargs: Any,
) -> RFTrace:
    """Every module's output field (rows in the order the modules finish, as the profile lists
    them), the model output's field and the model's depth in weight layers.

    `run(model, input_size)` runs the forward pass (default: one meta input); whatever it
    feeds the model first is the input whose pixels the fields count.
    """
    model, name, input_size = build_meta(model_or_name, input_size, **model_kwargs)
    tracer = _Tracer()
    rows: dict[str, RFRow] = {}
    order: list[str] = []
    inputs: dict[str, Field | None] = {}
    final: list[Any] = []
    one = Axis(1, Fraction(1), Fraction(0))

    def seed(mod: nn.Module, args: tuple) -> None:
        x = args[0] if args else None
        if isinstance(x, torch.Tensor) and x.dim() == 4 and tracer.get(x) is None:
            tracer.fields[x] = Field(one, one, (int(x.shape[-2]), int(x.shape[-1])))

    def done(mod: nn.Module, args: tuple, out: Any) -> None:
        final.append(out)

    def pre(qual: str):
        def hook(mod: nn.Module, args: tuple) -> None:
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                tracer.weight_module += 1
            inputs[qual] = tracer.get(args[0]) if args else None
        return hook

    def post(qual: str):
        def hook(mod: nn.Module, args: tuple, out: Any) -> None:
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                tracer.weight_module -= 1
            t = _first_tensor(out)
            f = tracer.get(t)
            if t is None or f is None:
                return
            row = _row(qual, mod, t, f, inputs.get(qual), input_size)
            if qual not in rows:
                order.append(qual)
                rows[qual] = row
            elif row.rf[0] * row.rf[1] > rows[qual].rf[0] * rows[qual].rf[1]:
                rows[qual] = row  # a module run twice (a shared ReLU): its widest call
        return hook

    handles = [model.register_forward_pre_hook(seed), model.register_forward_hook(done)]
    for qual, mod in model.named_modules():
        if qual:
            handles.append(mod.register_forward_pre_hook(pre(qual)))
            handles.append(mod.register_forward_hook(post(qual)))
    was_training = model.training
    output = None
    try:
        with torch.no_grad(), tracer:
            (run or _forward)(model, input_size)
            t = _first_tensor(final[-1]) if final else None
            f = tracer.get(t)
            if t is not None and f is not None:
                output = _row("output", model, t, f, None, input_size)
    except (RuntimeError, ValueError, IndexError) as e:
        if isinstance(e, UserInputError):
            raise
        size = "x".join(map(str, input_size))
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserInputError(f"{name} cannot take a {size} input: {first}") from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return RFTrace(name, input_size, [rows[q] for q in order], output,
                   output.depth if output else 0, sorted(tracer.notes))


def profile_with_fields(
    model_or_name: nn.Module | str, input_size: tuple[int, int, int] | None = None,
    batch_size: int = 1, **model_kwargs: Any,
) -> tuple[Profile, RFTrace]:
    """`convzoo.summary` and `trace_fields` in one meta forward pass (the rows share names)."""
    model, name, input_size = build_meta(model_or_name, input_size, **model_kwargs)
    got: list[Profile] = []
    trace = trace_fields(model, input_size, run=lambda m, size: got.append(
        profile_model(m, size, batch_size, name)))
    trace.model = name
    return got[0], trace


def receptive_fields(
    model_or_name: nn.Module | str, input_size: tuple[int, int, int] | None = None,
    **model_kwargs: Any,
) -> list[RFRow]:
    """Each module's receptive field, jump and start, keyed by the profile's layer names.

    Containers (a stage, a residual block) have rows too; look rows up by name.
    """
    return trace_fields(model_or_name, input_size, **model_kwargs).rows

