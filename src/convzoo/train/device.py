"""Where and how a run computes: the device, autocast's dtype, channels_last, and their names.

bf16 autocast and channels_last on a GPU, fp32 and the default layout on the CPU, unless the
config says otherwise (`device`, `amp`, `channels_last`).
"""

from __future__ import annotations

import contextlib
import platform

import torch

from ..errors import UserInputError


def resolve_device(spec: str) -> torch.device:
    """'auto' (a GPU when there is one), 'cpu', 'cuda' or 'cuda:N' as a torch.device."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UserInputError(f"unknown device {spec!r}: use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError("--device cuda was asked for, but no CUDA GPU is available "
                             "(use --device cpu or auto)")
    return device


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast's dtype for the setting `amp` on `device`; None means fp32 throughout."""
    if amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if amp in ("bf16", "bfloat16"):
        return torch.bfloat16
    if amp in ("fp32", "none", "off"):
        return None
    raise UserInputError(f"unknown amp setting {amp!r}: use auto, bf16 or fp32")


def resolve_channels_last(setting: bool | None, device: torch.device) -> bool:
    """The config's choice, or channels_last on a GPU only (on the CPU it is slower)."""
    return setting if setting is not None else device.type == "cuda"


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """torch.autocast to `dtype`, or nothing at all for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def amp_name(dtype: torch.dtype | None) -> str:
    """'bfloat16' or 'fp32', as run summaries report it."""
    return str(dtype).replace("torch.", "") if dtype is not None else "fp32"


def device_name(device: torch.device) -> str:
    """The device as a person would name it: the GPU's model, or the CPU and its threads."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
