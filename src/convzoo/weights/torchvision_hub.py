"""Weights through torchvision's own weights API (needs a network the first time)."""

from __future__ import annotations

from torch import nn

from ..errors import ConvzooError, UserInputError
from .state import LoadReport, load_state


def load_torchvision_weights(model: nn.Module, tag: str) -> LoadReport:
    import torchvision

    tv_name = getattr(model, "torchvision_name", None)
    if tv_name is None:
        raise UserInputError(f"{getattr(model, 'model_name', 'this model')} has no torchvision "
                             "counterpart; pass a weights file instead")
    try:
        enum = torchvision.models.get_model_weights(tv_name)
        w = enum[tag] if tag != "DEFAULT" else enum.DEFAULT
    except (KeyError, ValueError):
        raise UserInputError(f"torchvision has no weights {tag!r} for {tv_name}") from None
    try:
        sd = w.get_state_dict(progress=False, check_hash=True)
    except Exception as e:  # noqa: BLE001 - the download is the usual failure
        raise ConvzooError(f"could not fetch torchvision weights {tv_name}.{tag}: {e}; "
                           "download the .pth elsewhere and pass its path") from None
    report = load_state(model, sd, f"torchvision:{tv_name}.{tag}")
    if report.head_loaded and w.meta.get("categories"):
        report.class_names = list(w.meta["categories"])
    return report
