"""Checkpoints: tensors in safetensors, everything else in JSON; nothing is ever unpickled.

A checkpoint is a directory:
  model.safetensors      the model's state_dict
  state.safetensors      the tensors of the optimiser, the schedule and the RNG states
  ema.safetensors        the parameter EMA (a model state_dict under `module.`), when on
  checkpoint.json        model name and arguments, config, epoch, step, metrics, class names,
                         the non-tensor parts of the optimiser/schedule/RNG state, versions
It is written under a temporary name beside its final one and renamed into place, so a crash
leaves either the old checkpoint or the new one. A run directory holds `last/` and `best/`.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import UserInputError

FORMAT = "convzoo.checkpoint"
VERSION = 1
META = "checkpoint.json"


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

def rng_state() -> dict[str, Any]:
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
    return state


def set_rng_state(state: dict[str, Any]) -> None:
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


def versions() -> dict[str, str]:
    import safetensors
    import torchvision

    from .. import __version__

    return {"convzoo": __version__, "torch": torch.__version__,
            "torchvision": torchvision.__version__, "safetensors": safetensors.__version__,
            "python": platform.python_version()}


# ---- writing -------------------------------------------------------------------------------

def _write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save

    data = save(tensors, metadata={"format": "pt"})
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _swap_in(tmp: Path, final: Path) -> None:
    """Put the finished directory `tmp` at `final`; the old one is removed only afterwards."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


def state_dict_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    base = getattr(model, "_orig_mod", model)  # torch.compile's wrapper
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in base.state_dict().items()}


def save_checkpoint(path: str | Path, *, model: torch.nn.Module, meta: dict[str, Any],
                    optimizer: torch.optim.Optimizer | None = None, schedule: Any = None,
                    ema: torch.nn.Module | None = None, rng: bool = True) -> Path:
    """Write a checkpoint directory at `path` atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    _write_tensors(tmp / "model.safetensors", state_dict_of(model))
    tensors: dict[str, torch.Tensor] = {}
    training: dict[str, Any] = {}
    if optimizer is not None:
        training["optimizer"] = split_state(optimizer.state_dict(), "optimizer.", tensors)
    if schedule is not None:
        training["schedule"] = split_state(schedule.state_dict(), "schedule.", tensors)
    if rng:
        training["rng"] = split_state(rng_state(), "rng.", tensors)
    files = {"model": "model.safetensors"}
    if tensors or training:
        _write_tensors(tmp / "state.safetensors", tensors)
        files["state"] = "state.safetensors"
    if ema is not None:
        _write_tensors(tmp / "ema.safetensors", state_dict_of(ema))
        files["ema"] = "ema.safetensors"
    doc = {"format": FORMAT, "version": VERSION, **meta, "training_state": training,
           "files": files, "versions": versions(),
           "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with open(tmp / META, "w") as f:
        json.dump(doc, f, indent=1, default=repr)
        f.flush()
        os.fsync(f.fileno())
    _swap_in(tmp, path)
    return path


def copy_checkpoint(src: str | Path, dst: str | Path) -> None:
    """`dst` becomes a copy of `src` (hard links where possible: files are never rewritten)."""
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for f in src.iterdir():
        try:
            os.link(f, tmp / f.name)
        except OSError:
            shutil.copy2(f, tmp / f.name)
    _swap_in(tmp, dst)


# ---- reading -------------------------------------------------------------------------------

@dataclass
class Checkpoint:
    path: Path
    meta: dict[str, Any]
    _tensors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)

    def tensors(self, which: str) -> dict[str, torch.Tensor]:
        """'model', 'state' or 'ema': that file's tensors, read on first use."""
        if which not in self._tensors:
            name = self.meta.get("files", {}).get(which)
            if name is None:
                raise UserInputError(f"checkpoint {self.path} has no {which} state")
            self._tensors[which] = read_tensors(self.path / name)
        return self._tensors[which]

    @property
    def model_state(self) -> dict[str, torch.Tensor]:
        return self.tensors("model")

    @property
    def has_ema(self) -> bool:
        return "ema" in self.meta.get("files", {})

    def ema_model_state(self) -> dict[str, torch.Tensor]:
        """The EMA weights under the model's own names."""
        return {k.removeprefix("module."): v for k, v in self.tensors("ema").items()
                if k.startswith("module.")}

    def training_state(self) -> dict[str, Any]:
        return join_state(self.meta.get("training_state", {}), self.tensors("state"))

    @property
    def class_names(self) -> list[str] | None:
        return self.meta.get("class_names")


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise UserInputError(f"checkpoint file {path} is missing")
    try:
        return load_file(str(path))
    except Exception as e:  # noqa: BLE001 - any reader error means a damaged file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise UserInputError(f"checkpoint file {path} is corrupt or truncated ({first}); "
                             "use another checkpoint (e.g. the run's best/ or last/)") from None


def resolve(source: str | Path, prefer: str = "best") -> Path:
    """The checkpoint directory a run directory, checkpoint directory or file in one means."""
    p = Path(source)
    if p.is_file():
        p = p.parent
    if not p.exists():
        raise UserInputError(f"{source} does not exist (give a run directory or a checkpoint)")
    if (p / META).is_file():
        return p
    order = (prefer, "last" if prefer == "best" else "best")
    for name in order:
        for cand in (p / name, p / f".{name}.old"):
            if (cand / META).is_file():
                return cand
    raise UserInputError(f"{source} holds no convzoo checkpoint "
                         f"(looked for {META} in it and in its best/ and last/)")


def load_checkpoint(source: str | Path, prefer: str = "best") -> Checkpoint:
    path = resolve(source, prefer)
    try:
        meta = json.loads((path / META).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserInputError(f"checkpoint {path / META} is corrupt (not valid JSON: {e})") \
            from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserInputError(f"{path / META} is not a convzoo checkpoint")
    if meta.get("version", 0) > VERSION:
        raise UserInputError(f"checkpoint {path} was written by a newer convzoo "
                             f"(format {meta['version']}); upgrade convzoo to read it")
    return Checkpoint(path, meta)


def model_from_checkpoint(ckpt: Checkpoint, *, ema: bool = True,
                          device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model the checkpoint describes and load its weights (EMA ones if present)."""
    from ..registry import create_model
    from ..weights import load_state

    name = ckpt.meta.get("model")
    if not name:
        raise UserInputError(f"checkpoint {ckpt.path} does not name its model")
    model = create_model(name, **ckpt.meta.get("model_args", {}))
    state = ckpt.ema_model_state() if ema and ckpt.has_ema else ckpt.model_state
    load_state(model, dict(state), str(ckpt.path))
    model.class_names = ckpt.class_names  # type: ignore[assignment]
    return model.to(device).eval()
