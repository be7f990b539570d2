"""Faster CPU forms of layers that the classic nets use in shapes oneDNN handles badly.

Figures: one thread, fp32 unless said; `python benchmarks/cpu_kernels.py`, results/cpu_kernels.json.

A convolution whose kernel covers its whole input (LeNet-5's C5: 16x5x5 in, 120 out; the 1x1
squeeze-and-excitation convolutions on a pooled 1x1 map) makes one output per map: it is a
matrix product. As `Conv2d` it costs 2.6-4.4x the `F.linear` it equals (C5 forward+backward at
batch 64: 0.95 ms against 0.23 ms; SE convolutions 2.6-3.5x). `FullExtentConv2d` computes it so.

A 2x2, stride-2 max-pool (lenet5_modern, VGG) is exact as the maximum of its four strided
views, 1.6-9.3x faster than `max_pool2d` forward (lenet5_modern's S2 at batch 64: 0.73 ms
against 0.18 ms, channels_last); but autograd's backward through the views costs 2.3-10x the native
forward and backward together, so `EvalMaxPool2d` uses the views only where no gradient is
recorded (evaluation, inference) and the native kernel in training.

Two layers of the CIFAR ResNets give their input's gradient in the contiguous layout though
the net runs channels_last: global average pooling (its backward expands the output's
gradient) and option A's shortcut (subsampling, padded channels). Every element-wise backward
that meets such a gradient beside a channels_last tensor then walks memory across the grain:
ReLU's backward on a (128, 16, 32, 32) bf16 map takes 11.4 ms so against 0.57 ms with both
channels_last. `apply_cpu_kernels` makes those layers give the gradient in their input's
layout (one copy): resnet20's bf16 step at batch 128 runs 1.07x faster, the weights after the
steps the same bits.

`apply_cpu_kernels` swaps such layers' class in place, keeping their parameters, names and
state_dict, so checkpoints and optimisers see nothing; a swapped layer still checks each input
and falls back to torch's own for any other shape, device, or when traced, compiled or
exported. `remove_cpu_kernels` undoes it before a model leaves the run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import SqueezeExcite
from ..models.resnet import PadShortcut


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
            # the same order on both sides, so the product is the convolution's sum: (kh, kw,
            # C) for channels_last, where both flatten as views and the input's gradient comes
            # back channels_last too; (C, kh, kw) otherwise
            if _channels_last(x):
                xs, w = x.permute(0, 2, 3, 1).reshape(n, -1), self.weight.permute(0, 2, 3, 1)
            else:
                xs, w = x.reshape(n, -1), self.weight
            return F.linear(xs, w.reshape(out, -1), self.bias).view(n, out, 1, 1)
        return super().forward(x)


class EvalMaxPool2d(nn.MaxPool2d):
    """A 2x2, stride-2 `MaxPool2d` computed from four strided views where no gradient is
    recorded; the maximum is exact, so the output is the same bits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.device.type == "cpu" and _plain_call() \
                and not (torch.is_grad_enabled() and x.requires_grad):
            h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2  # an odd last row is dropped
            x = x[:, :, :h, :w]
            return torch.maximum(torch.maximum(x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]),
                                 torch.maximum(x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]))
        return super().forward(x)


def _channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
        memory_format=torch.channels_last)


class _GradInChannelsLast(torch.autograd.Function):
    """The identity, whose backward gives the gradient channels_last, as its input was."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, g: torch.Tensor) -> torch.Tensor:
        return g if _channels_last(g) else g.contiguous(memory_format=torch.channels_last)


def _grad_channels_last(x: torch.Tensor) -> torch.Tensor:
    """`x`, whose gradient will come back channels_last as `x` is (where autograd records, on
    the CPU, in eager mode)."""
    if x.device.type == "cpu" and torch.is_grad_enabled() and x.requires_grad \
            and _channels_last(x) and _plain_call():
        return _GradInChannelsLast.apply(x)
    return x


class _KeepsGradientLayout:
    """Mixin for a layer whose backward gives a contiguous gradient for a channels_last input:
    the gradient goes back channels_last."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_grad_channels_last(x))  # type: ignore[misc]


class LayoutSqueezeExcite(SqueezeExcite):
    """Squeeze-and-excitation whose pooling gives its gradient channels_last, so that it adds
    to the rescaling's in the same layout."""

    def squeeze(self, x: torch.Tensor) -> torch.Tensor:
        return super().squeeze(_grad_channels_last(x))


class LayoutAdaptiveAvgPool2d(_KeepsGradientLayout, nn.AdaptiveAvgPool2d):
    """`AdaptiveAvgPool2d` giving its input's gradient in the input's layout."""


class LayoutPadShortcut(_KeepsGradientLayout, PadShortcut):
    """Option A's shortcut giving its input's gradient in the input's layout."""


_LAYOUT_SWAPS: dict[type, type] = {nn.AdaptiveAvgPool2d: LayoutAdaptiveAvgPool2d,
                                   PadShortcut: LayoutPadShortcut,
                                   SqueezeExcite: LayoutSqueezeExcite}


def _pool_candidate(m: nn.Module) -> bool:
    two = (2, 2)
    return (type(m) is nn.MaxPool2d and _pair(m.kernel_size) == two and _pair(m.stride) == two
            and _pair(m.padding) == (0, 0) and _pair(m.dilation) == (1, 1) and not m.ceil_mode
            and not m.return_indices)


def _pair(v: int | tuple[int, ...]) -> tuple[int, ...]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _full_extent_candidate(m: nn.Module) -> bool:
    return (type(m) is nn.Conv2d and m.groups == 1 and m.padding in ((0, 0), "valid")
            and m.dilation == (1, 1) and m.padding_mode == "zeros")


def apply_cpu_kernels(model: nn.Module, input_size: tuple[int, int, int],
                      channels_last: bool = True) -> list[str]:
    """Swap in the faster CPU forms where `model`, fed `input_size` images, would use them
    (with `channels_last`, a training run's layout, the layers that keep gradients in it);
    returns what was swapped, for the log ("1 full-extent conv as linear", ...)."""
    said = []
    pools = [m for m in model.modules() if _pool_candidate(m)]
    convs = _full_extent_convs(model, input_size)
    layout = [m for m in model.modules() if type(m) in _LAYOUT_SWAPS] if channels_last else []
    for m in convs:
        m.__class__ = FullExtentConv2d
    for m in pools:
        m.__class__ = EvalMaxPool2d
    for m in layout:
        m.__class__ = _LAYOUT_SWAPS[type(m)]
    if convs:
        said.append(f"{_count(len(convs), 'full-extent conv')} as linear")
    if pools:
        said.append(f"{_count(len(pools), '2x2 max-pool')} as strided maxima in evaluation")
    if layout:
        said.append(f"{_count(len(layout), 'layer')} giving gradients channels_last")
    return said


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n > 1 else ''}"


def _full_extent_convs(model: nn.Module, input_size: tuple[int, int, int]) -> list[nn.Module]:
    """The plain convolutions whose kernel covers the input they see at `input_size`."""
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
    return [m for m in candidates if inputs.get(m) == m.kernel_size]


def remove_cpu_kernels(model: nn.Module) -> None:
    """Give every swapped layer back its own class (what export and a caller expect)."""
    plain_of = {FullExtentConv2d: nn.Conv2d, EvalMaxPool2d: nn.MaxPool2d,
                **{swapped: plain for plain, swapped in _LAYOUT_SWAPS.items()}}
    for m in model.modules():
        if type(m) in plain_of:
            m.__class__ = plain_of[type(m)]


def prepare_cpu_inference(model: nn.Module, input_size: tuple[int, int, int]
                          ) -> tuple[torch.dtype | None, list[str]]:
    """Ready `model` (on the CPU) for fast scoring, in place, as a CPU training run does:
    eval mode, channels_last, the faster layers; returns the autocast dtype to run it under
    (bf16 where `device.cpu_auto_amp` finds it pays, else None) and what was done."""
    from .device import cpu_auto_amp

    model.eval().to(memory_format=torch.channels_last)
    dtype, why = cpu_auto_amp(model, input_size)
    return dtype, [why, "channels_last",
                   *apply_cpu_kernels(model, input_size, channels_last=False)]
