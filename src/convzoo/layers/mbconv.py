"""The inverted residual ("MBConv") block of MobileNet v2, MobileNet v3 and EfficientNet.

expand 1x1 -> depthwise kxk -> optional squeeze-and-excitation -> project 1x1 (linear), with an
identity shortcut when the block keeps the shape, and optional stochastic depth on the residual
branch. The three families differ only in what they pass in: activations, SE width and gate,
norm epsilon, and padding. Children are named `expand`, `dw`, `se`, `project`, `drop_path`
(absent ones left out) so that foreign key maps are short and readable.

Padding: "symmetric" pads (k-1)/2 on every side, as torchvision does. "tf_same" pads like
TensorFlow's 'SAME' (output = ceil(input / stride), the odd pixel of padding going to the bottom
and right), which weights trained in TensorFlow (EfficientNet-Lite) need to give the same
numbers: at stride 2 on an even input, TF pads 0 before and 1 after, torchvision 1 and 1.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .activations import ActSpec
from .conv import ConvNormAct, NormSpec, SqueezeExcite


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor`, never more than 10% down.

    The rounding of the TensorFlow MobileNet and EfficientNet code, which torchvision keeps.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class Conv2dSame(nn.Conv2d):
    """A convolution padded like TensorFlow's 'SAME', worked out from each input's size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def conv_norm_act(
    in_ch: int, out_ch: int, kernel_size: int = 1, stride: int = 1, groups: int = 1,
    norm: NormSpec = "bn", act: ActSpec = "relu", padding: str = "symmetric", dilation: int = 1,
) -> ConvNormAct:
    """A `ConvNormAct` whose convolution pads symmetrically or like TensorFlow ('tf_same')."""
    if padding not in ("symmetric", "tf_same"):
        raise ValueError(f"padding must be 'symmetric' or 'tf_same', not {padding!r}")
    block = ConvNormAct(in_ch, out_ch, kernel_size, stride, groups=groups, dilation=dilation,
                        norm=norm, act=act)
    if padding == "tf_same" and (kernel_size > 1 or stride > 1):
        old = block.conv
        block.conv = Conv2dSame(in_ch, out_ch, kernel_size, stride, 0, dilation=dilation,
                                groups=groups, bias=old.bias is not None)
    return block


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016): drop a sample's residual branch with probability p.

    Kept samples are scaled by 1/(1-p), so the expected output is unchanged and evaluation is the
    identity.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class InvertedResidual(nn.Module):
    """MBConv: expand 1x1 -> depthwise kxk -> [SE] -> project 1x1, residual when shapes allow.

    `expand_ch` is the width of the depthwise stage; when it equals `in_ch` the expansion
    convolution is left out (MobileNet v2's t=1 rows, EfficientNet's MBConv1). `se_ch` > 0 adds
    squeeze-and-excitation on the expanded features with `se_act` inside and `se_gate` as its gate.
    """

    def __init__(
        self, in_ch: int, out_ch: int, expand_ch: int, kernel_size: int = 3, stride: int = 1,
        act: ActSpec = "relu6", se_ch: int = 0, se_act: ActSpec = "relu",
        se_gate: ActSpec = "sigmoid", norm: NormSpec = "bn", drop_path: float = 0.0,
        padding: str = "symmetric", dilation: int = 1,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_ch, out_ch, stride
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if expand_ch != in_ch:
            layers["expand"] = conv_norm_act(in_ch, expand_ch, 1, norm=norm, act=act)
        layers["dw"] = conv_norm_act(expand_ch, expand_ch, kernel_size, stride, groups=expand_ch,
                                     norm=norm, act=act, padding=padding, dilation=dilation)
        if se_ch > 0:
            layers["se"] = SqueezeExcite(expand_ch, se_ch, act=se_act, gate=se_gate)
        layers["project"] = conv_norm_act(expand_ch, out_ch, 1, norm=norm, act=None)
        for name, module in layers.items():
            self.add_module(name, module)
        self.parts = tuple(layers)  # names in call order, for key maps
        self.drop_path = DropPath(drop_path) if self.use_residual and drop_path > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for name in self.parts:
            out = getattr(self, name)(out)
        if not self.use_residual:
            return out
        if self.drop_path is not None:
            out = self.drop_path(out)
        return out + x
