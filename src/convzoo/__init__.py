"""convzoo: the classic convolutional networks, faithful to their papers."""

from .analysis.profile import Profile, summary
from .errors import ConvzooError, UserInputError
from .registry import create_model, list_models, register_model

__version__ = "0.1.0"

__all__ = [
    "ConvzooError", "Profile", "UserInputError", "create_model", "list_models",
    "register_model", "summary", "__version__",
]
