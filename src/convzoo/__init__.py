"""convzoo: the classic convolutional networks, faithful to their papers."""

from .analysis.profile import Profile, summary
from .errors import ConvzooError, UserInputError
from .registry import create_model, list_models, register_model

__version__ = "0.1.0"

__all__ = [
    "ConvzooError", "Profile", "TrainConfig", "UserInputError", "create_model", "fit",
    "list_models", "register_model", "summary", "__version__",
]

# Training from Python: `from convzoo import fit, TrainConfig`. Imported on first use, so that
# `import convzoo` (and every command that does not train) stays quick to start.
_LAZY = {"fit": ("convzoo.train.loop", "fit"), "TrainConfig": ("convzoo.train.config",
                                                                "TrainConfig")}


def __getattr__(name: str):  # noqa: ANN202 - module-level lazy attributes (PEP 562)
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'convzoo' has no attribute {name!r}")
