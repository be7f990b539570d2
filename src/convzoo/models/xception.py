"""Xception (Chollet 2017, "Xception: Deep Learning with Depthwise Separable Convolutions"),
Figure 5: entry flow, middle flow repeated 8 times, exit flow; 299x299 input.

Every layer is a row of `ENTRY`, `MIDDLE` and `EXIT` below. A block is a stack of units, each
an optional activation, a 3x3 depthwise separable convolution and batch norm; strided blocks end
in 3x3/2 max-pooling, and every block adds a shortcut (a 1x1 convolution with batch norm where
the width or the size changes, the identity otherwise).

`xception` has the layout, parameter count (22,855,952) and outputs of timm's
`legacy_xception` (the Keras model's weights, ported) and loads its state_dict. Choices, all
as in timm and in the paper's Keras implementation:
- The paper's figure leaves batch norm out; its text puts one after every convolution and
  separable convolution, the shortcut's 1x1 included. No convolution has a bias, since batch
  norm follows each one.
- Nothing (no batch norm, no activation) sits between a separable convolution's depthwise and
  pointwise parts (section 4.7 of the paper).
- The first entry block starts without an activation: the stem already ends in one. Every other
  block starts with an activation of its residual branch, so the shortcut sees the block's
  input before it (the figure's "ReLU" inside the block); that first activation is therefore
  never in-place.
- Middle-flow blocks end without an activation: the next block starts with one.
- The strided max-pools are padded by 1 on every side. The Keras original pads them 'same',
  which agrees on odd sizes but pads only the bottom and right of an even one: at 299x299 that
  is the second entry block's 74x74 map, where the pooling windows sit one pixel apart.
- The head is global average pooling and the logistic regression layer, with dropout 0.5 before
  it, as the paper trained on ImageNet (timm leaves dropout at 0; it does not change outputs in
  eval mode). The optional fully connected layers of Figure 5 are left out, as in the paper's
  ImageNet model.
- Weights are initialised as timm does: He (fan-out) for convolutions, batch norm 1 and 0.
- The three flows are the three stages (the exit flow's last two separable convolutions
  belong to it), so parameter groups are stem, entry, middle, exit, head.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch
from torch import nn

from ..layers import ConvNormAct, SeparableConv2d
from ..layers.activations import ActSpec, make_act
from ..layers.init import he_init
from ..registry import register_model
from .base import ClassifierHead, ConvNet, Paper, pool_flatten


class Block(NamedTuple):
    """One residual block: separable convolutions of these widths, then a pool if strided."""

    widths: tuple[int, ...]
    stride: int = 1
    first_act: bool = True  # an activation before the first separable convolution


class SepConv(NamedTuple):
    """A separable convolution -> batch norm -> activation outside any residual block."""

    width: int


class Flow(NamedTuple):
    name: str
    layers: tuple[Block | SepConv, ...]


STEM = ((32, 2), (64, 1))  # Figure 5: Conv 32 3x3/2, Conv 64 3x3, both unpadded, with ReLU

# Figure 5 of the paper.
ENTRY = Flow("entry", (
    Block((128, 128), stride=2, first_act=False),
    Block((256, 256), stride=2),
    Block((728, 728), stride=2),
))
MIDDLE = Flow("middle", (Block((728, 728, 728)),) * 8)
EXIT = Flow("exit", (Block((728, 1024), stride=2), SepConv(1536), SepConv(2048)))
FLOWS = (ENTRY, MIDDLE, EXIT)

PAPER = Paper(
    short="Chollet 2017",
    citation="F. Chollet. Xception: Deep Learning with Depthwise Separable Convolutions. "
    "CVPR 2017 (arXiv:1610.02357)",
    table="Figure 5 (entry, middle and exit flow)",
    url="https://arxiv.org/abs/1610.02357",
)


def _no_inplace(module: nn.Module) -> nn.Module:
    if hasattr(module, "inplace"):
        module.inplace = False
    return module


class XceptionBlock(nn.Module):
    """`units` (act -> separable conv -> bn, each) [-> max-pool] plus `shortcut`."""

    def __init__(self, in_ch: int, spec: Block, act: ActSpec) -> None:
        super().__init__()
        units, ch = [], in_ch
        for i, width in enumerate(spec.widths):
            unit: OrderedDict[str, nn.Module] = OrderedDict()
            if i > 0 or spec.first_act:
                # The shortcut still needs the block's input: the first activation must
                # leave it alone.
                unit["act"] = _no_inplace(make_act(act)) if i == 0 else make_act(act)
            unit["sep"] = SeparableConv2d(ch, width, 3, padding=1)
            unit["bn"] = nn.BatchNorm2d(width)
            units.append(nn.Sequential(unit))
            ch = width
        self.units = nn.Sequential(*units)
        self.pool = nn.MaxPool2d(3, spec.stride, 1) if spec.stride != 1 else nn.Identity()
        if ch != in_ch or spec.stride != 1:
            self.shortcut: nn.Module = ConvNormAct(in_ch, ch, 1, spec.stride, padding=0,
                                                   act=None)
        else:
            self.shortcut = nn.Identity()
        self.in_channels, self.out_channels = in_ch, ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.units(x)) + self.shortcut(x)


class Xception(ConvNet):
    default_input_size = (3, 299, 299)
    paper = PAPER
    weight_sources = ("timm",)

    def __init__(
        self, flows: tuple[Flow, ...] = FLOWS, num_classes: int = 1000, in_channels: int = 3,
        act: ActSpec = "relu", dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.flows, self.num_classes = flows, num_classes
        self.default_input_size = (in_channels, 299, 299)
        stem: OrderedDict[str, nn.Module] = OrderedDict()
        ch = in_channels
        for i, (width, stride) in enumerate(STEM, 1):
            stem[f"conv{i}"] = ConvNormAct(ch, width, 3, stride, padding=0, act=act)
            ch = width
        self.stem = nn.Sequential(stem)
        stages = []
        for flow in flows:
            layers: list[nn.Module] = []
            for spec in flow.layers:
                if isinstance(spec, Block):
                    block = XceptionBlock(ch, spec, act)
                else:
                    block = nn.Sequential(OrderedDict(
                        sep=SeparableConv2d(ch, spec.width, 3, padding=1),
                        bn=nn.BatchNorm2d(spec.width), act=make_act(act)))
                layers.append(block)
                ch = _width(spec)
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(pool_flatten(), ch, num_classes, dropout)
        he_init(self)

    def key_map(self, source: str) -> dict[str, str | None]:
        """timm numbers the blocks block1 ... block12 and the last two convolutions conv3, conv4;
        a block's `rep` is one Sequential of (ReLU,) SeparableConv2d, BatchNorm2d, ..."""
        if source != "timm":
            return super().key_map(source)
        m: dict[str, str | None] = {
            "conv1.": "stem.conv1.conv.", "bn1.": "stem.conv1.bn.",
            "conv2.": "stem.conv2.conv.", "bn2.": "stem.conv2.bn.", "fc.": "head.fc.",
        }
        block_no, sep_no = 0, 3
        for s, flow in enumerate(self.flows):
            for j, spec in enumerate(flow.layers):
                ours = f"stages.{s}.{j}."
                if isinstance(spec, SepConv):
                    m[f"conv{sep_no}.conv1."] = ours + "sep.depthwise."
                    m[f"conv{sep_no}.pointwise."] = ours + "sep.pointwise."
                    m[f"bn{sep_no}."] = ours + "bn."
                    sep_no += 1
                    continue
                block_no += 1
                theirs = f"block{block_no}."
                m[theirs + "skip."] = ours + "shortcut.conv."
                m[theirs + "skipbn."] = ours + "shortcut.bn."
                offset = 1 if spec.first_act else 0
                for u in range(len(spec.widths)):
                    rep = f"{theirs}rep.{3 * u + offset}."
                    m[rep + "conv1."] = f"{ours}units.{u}.sep.depthwise."
                    m[rep + "pointwise."] = f"{ours}units.{u}.sep.pointwise."
                    m[f"{theirs}rep.{3 * u + offset + 1}."] = f"{ours}units.{u}.bn."
        return m


def _width(spec: Block | SepConv) -> int:
    return spec.widths[-1] if isinstance(spec, Block) else spec.width


@register_model(timm="legacy_xception")
def xception(**kw) -> Xception:
    return Xception(FLOWS, **kw)
