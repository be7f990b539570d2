"""convzoo: the classic convolutional networks, faithful to their papers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConvzooError, UserInputError

__version__ = "0.1.0"

__all__ = [
    "ConvzooError", "Profile", "TrainConfig", "UserInputError", "create_model", "fit",
    "list_models", "register_model", "summary", "__version__",
]

# Imported on first use (PEP 562), so that `import convzoo` (and every command that does not
# train) stays quick to start, and `import convzoo.cli` costs no torch import: the command
# line's own Ctrl-C handler is in place before torch loads (seconds on a busy machine).
# Training from Python: `from convzoo import fit, TrainConfig`.
_LAZY = {"Profile": ("convzoo.analysis.profile", "Profile"),
         "summary": ("convzoo.analysis.profile", "summary"),
         "create_model": ("convzoo.registry", "create_model"),
         "list_models": ("convzoo.registry", "list_models"),
         "register_model": ("convzoo.registry", "register_model"),
         "fit": ("convzoo.train.loop", "fit"),
         "TrainConfig": ("convzoo.train.config", "TrainConfig")}

if TYPE_CHECKING:
    from .analysis.profile import Profile, summary
    from .registry import create_model, list_models, register_model
    from .train.config import TrainConfig
    from .train.loop import fit


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'convzoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
