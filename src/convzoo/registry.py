"""The model registry: every network is built by name."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import UserInputError

if TYPE_CHECKING:
    from torch import nn

Builder = Callable[..., "nn.Module"]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model and what is known about it before it is built."""

    name: str
    builder: Builder
    # The same network's name in torchvision / timm, whose state_dicts it loads.
    torchvision: str | None = None
    timm: str | None = None
    # Weights by name (`create_model(..., weights="imagenet")`): name -> loader(model).
    pretrained: Mapping[str, Callable[[nn.Module], Any]] = field(default_factory=dict)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    fn: Builder | None = None, *, name: str | None = None, torchvision: str | None = None,
    timm: str | None = None, pretrained: Mapping[str, Callable[[nn.Module], Any]] | None = None,
) -> Any:
    """Register a builder under its function name (or `name`); a duplicate name is an error.

    `torchvision` / `timm` name the counterpart whose weights the model loads
    (`weights="torchvision:IMAGENET1K_V1"` fetches them by that name); `pretrained` maps
    weight names such as "imagenet" to the functions that load them.
    """

    def wrap(f: Builder) -> Builder:
        key = name or f.__name__
        if key in _REGISTRY:
            raise ValueError(f"model name {key!r} is registered twice")
        _REGISTRY[key] = ModelEntry(key, f, torchvision, timm, dict(pretrained or {}))
        return f

    return wrap(fn) if fn is not None else wrap


def _ensure_loaded() -> None:
    from . import models  # noqa: F401  (importing the families registers them)


def get_entry(name: str) -> ModelEntry:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserInputError(
            f"unknown model {name!r}{hint} (`convzoo list` shows all {len(_REGISTRY)})"
        ) from None


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names, sorted; `pattern` is a shell-style wildcard such as 'resnet*'."""
    _ensure_loaded()
    names = sorted(_REGISTRY)
    if pattern:
        if not any(c in pattern for c in "*?["):
            pattern = f"*{pattern}*"
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def create_model(name: str, *, weights: str | None = None, **kwargs: Any) -> nn.Module:
    """Build a registered model; `weights` is a file path or a named source such as 'imagenet'."""
    entry = get_entry(name)
    try:
        model = entry.builder(**kwargs)
    except TypeError as e:
        raise UserInputError(f"{name}: {e}") from None
    describe(model, entry, kwargs)
    if weights is not None:
        from .weights import load_weights

        load_weights(model, weights, entry.pretrained)
    return model


def describe(model: nn.Module, entry: ModelEntry, kwargs: dict[str, Any]) -> None:
    """Set what a built model says about itself: the one place these attributes are written.

    The foreign names hold only while the model keeps the layout whose keys it maps: a
    `resnet50(stride_in="1x1")` is no longer torchvision's resnet50.
    """
    sources = tuple(getattr(model, "weight_sources", ()))
    model.model_name = entry.name  # type: ignore[attr-defined]
    model.model_args = dict(kwargs)  # type: ignore[attr-defined]
    model.torchvision_name = entry.torchvision if "torchvision" in sources else None
    model.timm_name = entry.timm if "timm" in sources else None
