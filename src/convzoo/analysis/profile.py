"""Real counts from real modules, on the meta device: no tensor memory is allocated.

Forward hooks give each layer's output shape and parameters; torch.utils.flop_counter gives
operations. Conventions (printed with every table):
- MACs are the multiply-accumulates of convolutions and fully connected layers; FLOPs = 2 x MACs.
- "params" include biases; "weights" leave out every parameter named `bias`.
- activations are the elements of each layer's output, batch included; in-place activations,
  views (flatten, identity) and dropout make no new tensor and are not added to the total.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import UserInputError
from .meta import build_meta, check_input_size, meta_call

_NO_NEW_TENSOR = (nn.Identity, nn.Flatten, nn.Dropout, nn.Dropout2d, nn.Unflatten)


def _dynamo_guarded() -> list[Any]:
    """The functions torch runs behind a `torch._disable_dynamo` wrapper on the meta device:
    inside the Python meta kernels (elementwise ops, addmm) and every dispatch mode's
    `__torch_dispatch__`; empty where torch names these differently."""
    try:
        from torch._decomp import global_decomposition_table
        from torch.utils._python_dispatch import TorchDispatchMode

        inner = torch._disable_dynamo(lambda: None).__code__
    except (ImportError, AttributeError, TypeError):
        return []
    todo: list[Any] = [f for table in global_decomposition_table.values()
                       for f in table.values()]
    classes = [TorchDispatchMode]
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        todo.append(cls.__dict__.get("__torch_dispatch__"))
    # A kernel is a few wrappers deep (out=, type promotion, the dynamo guard), and
    # functools.wraps points `__wrapped__` past some of them, so follow the closures.
    seen: set[int] = set()
    found: dict[int, Any] = {}
    while todo:
        f = todo.pop()
        code = getattr(f, "__code__", None)
        if code is None or id(f) in seen:
            continue
        seen.add(id(f))
        cells = dict(zip(code.co_freevars, f.__closure__ or ()))
        if code is inner and "fn" in cells:
            raw = cells["fn"].cell_contents
            found[id(raw)] = raw
        for cell in cells.values():
            try:
                todo.append(cell.cell_contents)
            except ValueError:  # a cell not filled yet
                pass
        todo.append(getattr(f, "__wrapped__", None))
    return list(found.values())


@contextmanager
def no_dynamo_import() -> Iterator[None]:
    """Run meta kernels and dispatch modes (FlopCounterMode, the receptive-field tracer)
    without importing torch._dynamo, which costs about 0.7 s (torch 2.14, `python -X importtime
    -m convzoo summary vgg16`), more than half of what that command adds to `import torch`.

    torch wraps these functions so that dynamo does not trace them; the wrapper imports
    torch._dynamo on its first call and caches the function dynamo should call instead on the
    raw one as `__dynamo_disable`. While torch._dynamo is not imported nothing is compiling,
    so the raw function itself is that function: it is cached for the duration and removed
    afterwards, so that a later torch.compile gets torch's own. Where torch names any of this
    differently nothing is cached and torch._dynamo is imported as before.
    """
    if "torch._dynamo" in sys.modules:
        yield
        return
    seeded = []
    for raw in _dynamo_guarded():
        if hasattr(raw, "__dynamo_disable"):
            continue
        try:
            setattr(raw, "__dynamo_disable", raw)
        except (AttributeError, TypeError):
            continue
        seeded.append(raw)
    try:
        yield
    finally:
        for raw in seeded:
            if getattr(raw, "__dynamo_disable", None) is raw:
                delattr(raw, "__dynamo_disable")


@dataclass
class LayerRow:
    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    weights: int  # params without biases
    macs: int
    activations: int
    extra: dict[str, Any] = field(default_factory=dict)  # kernel, stride, ... for paper tables


@dataclass
class Profile:
    model: str
    input_size: tuple[int, int, int]
    batch_size: int
    layers: list[LayerRow]
    total_params: int
    trainable_params: int
    total_weights: int
    total_macs: int
    activation_elements: int

    @property
    def flops(self) -> int:
        return 2 * self.total_macs

    def activation_bytes(self, dtype: torch.dtype = torch.float32) -> int:
        return self.activation_elements * torch.empty(0, dtype=dtype).element_size()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["total_flops"] = self.flops
        d["activation_bytes"] = {
            "float32": self.activation_bytes(torch.float32),
            "bfloat16": self.activation_bytes(torch.bfloat16),
        }
        for row in d["layers"]:
            row["output_shape"] = list(row["output_shape"])
            row.pop("extra")
        d["conventions"] = CONVENTIONS
        return d


CONVENTIONS = {
    "macs": "multiply-accumulates of convolutions and fully connected layers",
    "flops": "2 x MACs",
    "weights": "parameters without biases",
    "activations": "output elements of each layer that makes a new tensor, batch included",
}


def _is_row(module: nn.Module) -> bool:
    has_children = next(module.children(), None) is not None
    has_own = next(module.parameters(recurse=False), None) is not None
    return (not has_children or has_own) and not isinstance(module, nn.Identity)


def _makes_tensor(module: nn.Module) -> bool:
    return not isinstance(module, _NO_NEW_TENSOR) and not getattr(module, "inplace", False)


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for o in out:
            if isinstance(o, torch.Tensor):
                return o
    return getattr(out, "logits", None)


def _kind(m: nn.Module) -> str:
    """What the paper tables call a layer; subclasses (a 'same'-padded conv) keep their kind."""
    if isinstance(m, nn.Conv2d):
        return "conv"
    if isinstance(m, nn.Linear):
        return "fc"
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        return "pool"
    return ""


def _layer_extra(m: nn.Module) -> dict[str, Any]:
    keys = ("kernel_size", "stride", "padding", "groups", "in_channels", "out_channels",
            "in_features", "out_features")
    out: dict[str, Any] = {"kind": _kind(m)}
    for k in keys:
        v = getattr(m, k, None)
        if isinstance(v, (int, tuple)):
            out[k] = v
    return out


def profile_model(
    model: nn.Module, input_size: tuple[int, int, int], batch_size: int = 1, name: str = "",
    training: bool = False,
) -> Profile:
    """Profile `model` on a meta input of shape (batch, *input_size), in eval mode unless
    `training` (which runs what only training runs: GoogLeNet's auxiliary classifiers)."""
    if batch_size < 1:
        raise UserInputError(f"batch size must be at least 1, got {batch_size}")
    input_size = check_input_size(tuple(input_size))
    name = name or getattr(model, "model_name", type(model).__name__)
    rows: dict[str, LayerRow] = {}
    order: list[str] = []
    entered: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    handles = []

    def pre_hook(qual: str):
        def hook(mod: nn.Module, args: tuple) -> None:
            shape = tuple(args[0].shape) if args and isinstance(args[0], torch.Tensor) else ()
            entered.append((qual, mod, shape))
        return hook

    def post_hook(qual: str):
        def hook(mod: nn.Module, args: tuple, out: Any) -> None:
            t = _first_tensor(out)
            shape = tuple(t.shape) if t is not None else ()
            numel = 1
            for s in shape:
                numel *= s
            if qual not in rows:
                order.append(qual)
                params = sum(p.numel() for p in mod.parameters(recurse=False))
                biases = sum(p.numel() for n, p in mod.named_parameters(recurse=False)
                             if n.endswith("bias"))
                rows[qual] = LayerRow(qual, type(mod).__name__, shape, params, params - biases,
                                      0, numel if _makes_tensor(mod) else 0, _layer_extra(mod))
            else:  # a module called twice (weight sharing): add its second output
                rows[qual].activations += numel if _makes_tensor(mod) else 0
        return hook

    for qual, mod in model.named_modules():
        if qual and _is_row(mod):
            handles.append(mod.register_forward_pre_hook(pre_hook(qual)))
            handles.append(mod.register_forward_hook(post_hook(qual)))

    was_training = model.training
    model.train(training)
    # Imported here: it imports triton (about 70 ms in `python -X importtime -m convzoo
    # --help`), which only counting needs.
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    try:
        # The input is made inside too: an enclosing mode (the receptive-field tracer) sees it.
        with no_dynamo_import(), counter, torch.no_grad():
            meta_call(model, torch.empty(batch_size, *input_size, device="meta"))
    except (RuntimeError, ValueError, IndexError) as e:
        raise _forward_error(name, input_size, entered, e) from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    counts = counter.get_flop_counts()
    per_module = {k.split(".", 1)[1] if "." in k else "": sum(v.values())
                  for k, v in counts.items() if k != "Global"}
    child_total: dict[str, int] = {}
    for k, v in per_module.items():
        if k:
            parent = k.rsplit(".", 1)[0] if "." in k else ""
            child_total[parent] = child_total.get(parent, 0) + v
    for qual, row in rows.items():  # a row's own operations: its total less its children's
        row.macs = max(per_module.get(qual, 0) - child_total.get(qual, 0), 0) // 2
    total_macs = sum(counts.get("Global", {}).values()) // 2
    params = list(model.parameters())
    layers = [rows[q] for q in order]
    # Modules that hold parameters but do not run in eval mode (auxiliary classifiers) are
    # listed after the rest, without output, so the rows still add up to the model's count.
    for qual, mod in model.named_modules():
        if qual and qual not in rows and next(mod.parameters(recurse=False), None) is not None:
            own = list(mod.named_parameters(recurse=False))
            n = sum(p.numel() for _, p in own)
            b = sum(p.numel() for k, p in own if k.endswith("bias"))
            layers.append(LayerRow(qual, type(mod).__name__, (), n, n - b, 0, 0,
                                   {**_layer_extra(mod), "ran": False}))
    return Profile(
        model=name,
        input_size=tuple(input_size),
        batch_size=batch_size,
        layers=layers,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_weights=sum(p.numel() for n, p in model.named_parameters()
                          if not n.endswith("bias")),
        total_macs=total_macs,
        activation_elements=sum(r.activations for r in layers),
    )


def meta_forward(model: nn.Module, input_size: tuple[int, int, int], batch_size: int = 1) -> None:
    """Run `model` in eval mode on a meta input, its own weights untouched: for hooks that
    read the shapes each layer sees. Raises what the forward raises."""
    was_training = model.training
    model.eval()
    try:
        with no_dynamo_import(), torch.no_grad():
            meta_call(model, torch.empty(batch_size, *input_size, device="meta"))
    finally:
        model.train(was_training)


def _forward_error(
    name: str, input_size: tuple[int, ...], entered: list, err: Exception,
) -> UserInputError:
    size = "x".join(map(str, input_size))
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if not entered:
        return UserInputError(f"{name} cannot take a {size} input: {first}")
    qual, mod, shape = entered[-1]
    spatial = "x".join(map(str, shape[2:])) if len(shape) > 2 else "?"
    too_small = any(s in str(err).lower() for s in ("too small", "greater than input",
                                                    "kernel size can't be greater"))
    if too_small:
        return UserInputError(
            f"a {size} input is too small for {name}: the spatial size falls below 1 at "
            f"{qual} ({type(mod).__name__}), whose input is {spatial}; try a larger --input"
        )
    return UserInputError(f"{name} fails on a {size} input at {qual} ({type(mod).__name__}, "
                          f"input {list(shape)}): {first}")


def summary(
    model_or_name: nn.Module | str,
    input_size: tuple[int, int, int] | None = None,
    batch_size: int = 1,
    training: bool = False,
    **model_kwargs: Any,
) -> Profile:
    """Per-layer shapes, parameters, MACs and activations of a model or a registered name.

    A name is built on the meta device, so even VGG-19 costs no memory; a module is run with
    meta stand-ins for its parameters, leaving its own weights untouched.
    """
    model, name, input_size = build_meta(model_or_name, input_size, **model_kwargs)
    if not isinstance(model_or_name, str):
        name = getattr(model_or_name, "model_name", "")  # profile_model names it then
    return profile_model(model, input_size, batch_size, name, training)
