"""Faster CPU forms of layers that the classic nets use in shapes oneDNN handles badly.

A convolution whose kernel covers its whole input (LeNet-5's C5: 16x5x5 in, 120 out) makes
one output per map: it is a matrix product. As `Conv2d` it costs 4-5x the `F.linear` it
equals (one thread, fwd+bwd at batch 64: 853 us against 169 us, `benchmarks/cpu_kernels.py`).
`apply_cpu_kernels` swaps such layers' class in place, keeping their parameters, names and
state_dict, so checkpoints and optimisers see nothing; the swapped layer still checks each
input and falls back to the convolution for any other shape, device, or when traced or
exported. `remove_cpu_kernels` undoes it before a model leaves the run.

Measured and not used: an exact 2x2 max-pool from four strided views is 2-4x faster than
`max_pool2d` forward, but its backward on the CPU (strided writes, or the indices the native
backward needs) costs more than the native forward and backward together, so training loses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _plain_call() -> bool:
    """True when a forward runs eagerly: not traced, scripted, compiled or exported, where
    the layer must look like the convolution it is."""
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        return False
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and compiler.is_compiling():
        return False
    onnx = getattr(torch, "onnx", None)
    return not (onnx is not None and onnx.is_in_onnx_export())


class FullExtentConv2d(nn.Conv2d):
    """A `Conv2d` computed as `F.linear` when its kernel covers the whole unpadded input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.device.type == "cpu" and tuple(x.shape[-2:]) == self.kernel_size \
                and _plain_call():
            n, out = x.shape[0], self.out_channels
            # (C, kh, kw) order on both sides: the product is the convolution's sum
            y = F.linear(x.reshape(n, -1), self.weight.reshape(out, -1), self.bias)
            return y.view(n, out, 1, 1)
        return super().forward(x)


def _full_extent_candidate(m: nn.Module) -> bool:
    return (type(m) is nn.Conv2d and m.groups == 1 and m.padding in ((0, 0), "valid")
            and m.dilation == (1, 1) and m.padding_mode == "zeros")


def apply_cpu_kernels(model: nn.Module, input_size: tuple[int, int, int]) -> list[str]:
    """Swap in the faster CPU forms where `model`, fed `input_size` images, would use them;
    returns what was swapped, for the log ("32 full-extent convs as linear")."""
    inputs: dict[nn.Module, tuple[int, ...]] = {}
    candidates = [m for m in model.modules() if _full_extent_candidate(m)]
    if not candidates:
        return []

    def record(m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        inputs[m] = tuple(args[0].shape[-2:])

    hooks = [m.register_forward_pre_hook(record) for m in candidates]
    try:
        # the shapes each convolution sees, from a meta-device pass: no arithmetic, no memory
        from ..analysis.profile import meta_forward

        meta_forward(model, input_size)
    except Exception:  # noqa: BLE001 - a model the meta pass cannot follow keeps its layers
        return []
    finally:
        for h in hooks:
            h.remove()
    swapped = [m for m in candidates if inputs.get(m) == m.kernel_size]
    for m in swapped:
        m.__class__ = FullExtentConv2d
    if not swapped:
        return []
    n = len(swapped)
    return [f"{n} full-extent conv{'s' if n > 1 else ''} as linear"]


def remove_cpu_kernels(model: nn.Module) -> None:
    """Give every swapped layer back its own class (what export and a caller expect)."""
    for m in model.modules():
        if type(m) is FullExtentConv2d:
            m.__class__ = nn.Conv2d


def prepare_cpu_inference(model: nn.Module, input_size: tuple[int, int, int]
                          ) -> tuple[torch.dtype | None, list[str]]:
    """Ready `model` (on the CPU) for fast scoring, in place, as a CPU training run does:
    eval mode, channels_last, the faster layers; returns the autocast dtype to run it under
    (bf16 where `device.cpu_auto_amp` finds it pays, else None) and what was done."""
    from .device import cpu_auto_amp

    model.eval().to(memory_format=torch.channels_last)
    dtype, why = cpu_auto_amp(model, input_size)
    return dtype, [why, "channels_last", *apply_cpu_kernels(model, input_size)]
