"""A run's nested state (optimiser, schedule, RNGs, a loader's position) as JSON plus flat
tensors, and every RNG's state: what a checkpoint must hold for a resume to be exact."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import torch

# ---- nested state <-> (JSON, flat tensors) -------------------------------------------------

def split_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-able copy of `obj` whose tensors are moved into `tensors` under dotted names."""
    if isinstance(obj, torch.Tensor):
        key = prefix.rstrip(".")
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: split_state(v, f"{prefix}{k}.", tensors) for k, v in obj.items()}
        return {"__items__": [[k, split_state(v, f"{prefix}{k}.", tensors)]
                              for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [split_state(v, f"{prefix}{i}.", tensors)
                              for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [split_state(v, f"{prefix}{i}.", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix.rstrip('.')!r} in a checkpoint")


def join_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of `split_state`."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__items__" in obj:
            return {k: join_state(v, tensors) for k, v in obj["__items__"]}
        if "__tuple__" in obj:
            return tuple(join_state(v, tensors) for v in obj["__tuple__"])
        return {k: join_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_state(v, tensors) for v in obj]
    return obj


# ---- RNG states ----------------------------------------------------------------------------

Generators = Mapping[str, Any]  # name -> torch.Generator | numpy Generator | random.Random


def _generator_state(g: Any) -> dict[str, Any]:
    if isinstance(g, torch.Generator):
        return {"kind": "torch", "state": g.get_state()}
    if isinstance(g, random.Random):
        return {"kind": "python", "state": g.getstate()}
    import numpy as np

    if isinstance(g, np.random.Generator):
        # PCG64's state is a dict of (big) ints, which JSON holds exactly
        return {"kind": "numpy", "state": g.bit_generator.state}
    raise TypeError(f"cannot save the state of a {type(g).__name__} (give torch.Generator, "
                    "numpy.random.Generator or random.Random)")


def _set_generator_state(g: Any, saved: dict[str, Any]) -> None:
    kind, state = saved["kind"], saved["state"]
    if kind == "torch":
        g.set_state(state)
    elif kind == "python":
        g.setstate((state[0], tuple(state[1]), state[2]))
    elif kind == "numpy":
        g.bit_generator.state = state
    else:
        raise ValueError(f"unknown generator kind {kind!r}")


def rng_state(generators: Generators | None = None) -> dict[str, Any]:
    """Every global RNG's state (Python, numpy, torch CPU, CUDA once initialised), and that of
    each generator in `generators` (a loader's, say) under its name."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    try:
        import numpy as np

        name, keys, pos, has_gauss, cached = np.random.get_state()
        state["numpy"] = (name, torch.from_numpy(keys.astype("int64")), int(pos),
                          int(has_gauss), float(cached))
    except ImportError:
        pass
    if generators:
        state["generators"] = {k: _generator_state(g) for k, g in generators.items()}
    return state


def set_rng_state(state: dict[str, Any], generators: Generators | None = None) -> None:
    """Put back what `rng_state` returned; each generator in `generators` gets the state saved
    under its name (a name the state lacks is an error: resuming would not be exact)."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    if "numpy" in state:
        import numpy as np

        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, keys.numpy().astype("uint32"), pos, has_gauss, cached))
    saved = state.get("generators", {})
    for k, g in (generators or {}).items():
        if k not in saved:
            raise KeyError(f"no state saved for generator {k!r} (saved: {sorted(saved)})")
        _set_generator_state(g, saved[k])
