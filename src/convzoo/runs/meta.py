"""A run's metadata as a typed object: what checkpoint.json says about the run, read once and
checked, instead of string-keyed lookups in every reader.

checkpoint.json stays plain JSON (other tools read it); `RunMeta.of(meta)` gives the fields the
readers use, each with its type and its value for checkpoints written before it existed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Size = tuple[int, int, int]


def _size(value: Any) -> Size | None:
    if isinstance(value, list | tuple) and len(value) == 3 and all(isinstance(v, int)
                                                                    for v in value):
        return (int(value[0]), int(value[1]), int(value[2]))
    return None


def _floats(value: Any) -> tuple[float, ...] | None:
    if isinstance(value, list | tuple) and value and all(isinstance(v, int | float)
                                                         for v in value):
        return tuple(float(v) for v in value)
    return None


@dataclass(frozen=True)
class RunMeta:
    """The run a checkpoint belongs to and where it stood."""

    model: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    class_names: list[str] | None = None
    input_size: Size | None = None  # what the model was fed
    image_size: Size | None = None  # what the data set's images were stored at
    mean: tuple[float, ...] | None = None  # the normalisation it trained with
    std: tuple[float, ...] | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the TrainConfig, as saved
    epoch: int = 0
    step: int = 0
    best_top1: float | None = None
    best_epoch: int | None = None
    selection: dict[str, Any] | None = None  # how `best` was chosen
    amp: str | None = None  # the precision it evaluated in ('bfloat16', 'fp32')
    device_type: str | None = None  # 'cpu' or 'cuda'
    cpu_threads: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, meta: dict[str, Any]) -> RunMeta:
        """The typed view of a checkpoint.json's contents (unknown or ill-typed fields are left
        at their defaults; `checkpoint.check_meta` has refused what a run cannot use)."""
        def get(key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
            value = meta.get(key)
            return value if isinstance(value, kind) and not isinstance(value, bool) \
                or (kind is bool and isinstance(value, bool)) else default

        names = meta.get("class_names")
        return cls(
            model=get("model", str), model_args=dict(get("model_args", dict, {})),
            data=get("data", str),
            class_names=[str(n) for n in names] if isinstance(names, list) else None,
            input_size=_size(meta.get("input_size")), image_size=_size(meta.get("image_size")),
            mean=_floats(meta.get("mean")), std=_floats(meta.get("std")),
            config=dict(get("config", dict, {})), epoch=get("epoch", int, 0),
            step=get("step", int, 0), best_top1=get("best_top1", (int, float)),
            best_epoch=get("best_epoch", int), selection=get("selection", dict),
            amp=get("amp", str), device_type=get("device_type", str),
            cpu_threads=get("cpu_threads", int), history=list(get("history", list, [])))

    def setting(self, name: str, default: Any = None) -> Any:
        """One field of the run's saved TrainConfig (`default` where it was not recorded)."""
        return self.config.get(name, default)


__all__ = ["RunMeta"]
