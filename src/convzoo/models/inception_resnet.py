"""Inception-ResNet-v2 (Szegedy, Ioffe, Vanhoucke, Alemi 2016, "Inception-v4, Inception-ResNet
and the Impact of Residual Connections on Learning"), as released and as in the paper's figures.

Every module is data below: a convolution is a `Conv` row (a "V" in the paper's figures is
`valid=True`: no padding), a pool a `Pool` row, a multi-branch module a `Concat` of branches.
A residual Inception block concatenates its branches, projects them back to its input's width
with a 1x1 convolution that has a bias and no batch norm or activation (the figures' "Linear"),
scales that residual and adds it to the input, then applies the activation (Figures 16-19;
section 3.3: residuals scaled by 0.1 to 0.3 keep very wide residual nets from dying in
training). All other convolutions have batch norm (eps 1e-3, as TensorFlow) and ReLU.

Two layouts, two names:

`inception_resnet_v2` is the network the authors released in TF-slim, which timm ports and
whose weights users load: it has timm's 55,843,464 parameters and outputs and loads its
state_dict. It differs from the paper's figures (the TF-slim maintainers answered that it was
built on the authors' advice, tensorflow/models issue #1553):
- its stem is not Figure 3: after Inception-v3's convolutions (to 192 channels at 35x35) comes
  an Inception-v3-style module `mixed_5b` of 320 channels, so the blocks are 320, 1088 and 2080
  channels wide where the paper's are 384, 1152 and 2144;
- it repeats the blocks 10, 20 and 10 times (Figure 15: 5, 10, 5), with residual scales 0.17,
  0.10 and 0.20; its very last block has scale 1.0 and no activation after the sum;
- a 1x1 convolution to 1536 channels (`conv2d_7b`), not in the paper, precedes the pooling.
Its block names follow timm's (`mixed_5b`, `repeat`, `mixed_6a`, `repeat_1`, `mixed_7a`,
`repeat_2`, `block8`, `conv2d_7b`) in the key map; its stem keeps the TF-slim names.

`inception_resnet_v2_paper` is Figure 15 built from the paper's figures: the stem of Figure 3,
5 x Inception-ResNet-A (Figure 16), Reduction-A with k, l, m, n = 256, 256, 384, 384 (Figure 7,
Table 1), 10 x Inception-ResNet-B (Figure 17), Reduction-B (Figure 18), 5 x Inception-ResNet-C
(Figure 19), average pooling, dropout (keep 0.8), softmax. Where the figures contradict
themselves, convzoo follows what makes the network well-formed:
- Figure 3's last convolution "3x3 Conv (192 V)" must have stride 2 to go from 71x71 to the
  35x35 it shows;
- Figures 17 and 19 print 1154 and 2048 for the blocks' 1x1 "Linear" convolutions, but a
  residual sum needs the input's width: 384 + 384 + 384 = 1152 after Reduction-A and
  1152 + 384 + 288 + 320 = 2144 after Reduction-B, which convzoo uses;
- the paper gives no per-block scale, so the released ones (0.17, 0.10, 0.20) are used.
Branches are concatenated in the released code's order, which does not change what the paper
network computes. Weights use PyTorch's default initialisation, as timm does.

Stages: the A blocks; Reduction-A and the B blocks; Reduction-B, the C blocks (and `final`).
The smallest input either layout accepts is 75x75.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import NamedTuple

import torch
from torch import nn

from ..layers import ConvNormAct
from ..layers.activations import ActSpec, make_act
from ..registry import register_model
from .base import ClassifierHead, ConvNet, Paper, pool_flatten


class Conv(NamedTuple):
    """Convolution -> batch norm -> activation; `valid` is the figures' "V" (no padding)."""

    channels: int
    kernel: int | tuple[int, int] = 1
    stride: int = 1
    valid: bool = False


class Pool(NamedTuple):
    """3x3 max-pooling, stride 2, no padding; or 3x3/1 average pooling with padding 1."""

    kind: str = "max"


class Concat(NamedTuple):
    """Branches run side by side, their outputs concatenated along the channels."""

    branches: tuple[tuple[Conv | Pool, ...], ...]


Layer = Conv | Pool | Concat


class Stage(NamedTuple):
    reduction: Concat | None
    block: tuple[tuple[Conv, ...], ...]  # a residual block's branches
    repeats: int
    scale: float


class Layout(NamedTuple):
    stem: tuple[tuple[str, Layer], ...]
    stages: tuple[Stage, ...]
    last_block_scale: float  # the very last block's residual scale
    last_block_act: bool  # whether an activation follows the very last block's sum
    final_conv: int  # width of a 1x1 convolution after the last block; 0: none


V = True
# Figure 3 (the stem of Inception-v4 and Inception-ResNet-v2), with the last conv's stride 2.
PAPER_STEM: tuple[tuple[str, Layer], ...] = (
    ("conv1", Conv(32, 3, 2, V)),
    ("conv2", Conv(32, 3, 1, V)),
    ("conv3", Conv(64, 3)),
    ("mixed_3a", Concat(((Pool(),), (Conv(96, 3, 2, V),)))),
    ("mixed_4a", Concat(((Conv(64, 1), Conv(96, 3, 1, V)),
                         (Conv(64, 1), Conv(64, (7, 1)), Conv(64, (1, 7)), Conv(96, 3, 1, V))))),
    ("mixed_5a", Concat(((Conv(192, 3, 2, V),), (Pool(),)))),
)
# The released (TF-slim) stem: Inception-v3's first layers, then the module mixed_5b.
TF_SLIM_STEM: tuple[tuple[str, Layer], ...] = (
    ("conv2d_1a", Conv(32, 3, 2, V)),
    ("conv2d_2a", Conv(32, 3, 1, V)),
    ("conv2d_2b", Conv(64, 3)),
    ("maxpool_3a", Pool()),
    ("conv2d_3b", Conv(80, 1)),
    ("conv2d_4a", Conv(192, 3, 1, V)),
    ("maxpool_5a", Pool()),
    ("mixed_5b", Concat(((Conv(96, 1),), (Conv(48, 1), Conv(64, 5)),
                         (Conv(64, 1), Conv(96, 3), Conv(96, 3)), (Pool("avg"), Conv(64, 1))))),
)
# Figures 16, 17, 19: the branches of Inception-ResNet-A, -B and -C (v2).
BLOCK_A = ((Conv(32, 1),), (Conv(32, 1), Conv(32, 3)), (Conv(32, 1), Conv(48, 3), Conv(64, 3)))
BLOCK_B = ((Conv(192, 1),), (Conv(128, 1), Conv(160, (1, 7)), Conv(192, (7, 1))))
BLOCK_C = ((Conv(192, 1),), (Conv(192, 1), Conv(224, (1, 3)), Conv(256, (3, 1))))
# Figure 7 with Table 1's k, l, m, n = 256, 256, 384, 384; Figure 18.
REDUCTION_A = Concat(((Conv(384, 3, 2, V),), (Conv(256, 1), Conv(256, 3), Conv(384, 3, 2, V)),
                      (Pool(),)))
REDUCTION_B = Concat(((Conv(256, 1), Conv(384, 3, 2, V)), (Conv(256, 1), Conv(288, 3, 2, V)),
                      (Conv(256, 1), Conv(288, 3), Conv(320, 3, 2, V)), (Pool(),)))


def _stages(a: int, b: int, c: int) -> tuple[Stage, ...]:
    return (Stage(None, BLOCK_A, a, 0.17), Stage(REDUCTION_A, BLOCK_B, b, 0.10),
            Stage(REDUCTION_B, BLOCK_C, c, 0.20))


LAYOUTS: dict[str, Layout] = {
    # Figure 15: 5 x A, 10 x B, 5 x C.
    "paper": Layout(PAPER_STEM, _stages(5, 10, 5), 0.20, True, 0),
    # The released TF-slim network (timm's inception_resnet_v2).
    "tf_slim": Layout(TF_SLIM_STEM, _stages(10, 20, 10), 1.0, False, 1536),
}

PAPER = Paper(
    short="Szegedy et al. 2016",
    citation="C. Szegedy, S. Ioffe, V. Vanhoucke, A. Alemi. Inception-v4, Inception-ResNet and "
    "the Impact of Residual Connections on Learning. AAAI 2017 (arXiv:1602.07261)",
    table="Figure 15 (Inception-ResNet-v2), Figures 3, 7, 16-19, Table 1",
    url="https://arxiv.org/abs/1602.07261",
)


class Builder:
    """Builds rows into modules and tracks the channel count (pools keep it)."""

    def __init__(self, act: ActSpec) -> None:
        self.conv = partial(ConvNormAct, norm=partial(nn.BatchNorm2d, eps=1e-3), act=act)

    def layer(self, spec: Layer, ch: int) -> tuple[nn.Module, int]:
        if isinstance(spec, Concat):
            module = Branches(self, spec, ch)
            return module, module.out_channels
        if isinstance(spec, Pool):
            if spec.kind == "avg":
                return nn.AvgPool2d(3, 1, 1, count_include_pad=False), ch
            return nn.MaxPool2d(3, 2), ch
        pad = 0 if spec.valid else None
        return self.conv(ch, spec.channels, spec.kernel, spec.stride, padding=pad), spec.channels

    def branch(self, layers: tuple[Conv | Pool, ...], ch: int) -> tuple[nn.Module, int]:
        modules = []
        for spec in layers:
            m, ch = self.layer(spec, ch)
            modules.append(m)
        return (modules[0] if len(modules) == 1 else nn.Sequential(*modules)), ch


class Branches(nn.Module):
    """`branch0` ... `branchN` side by side, concatenated along the channels."""

    def __init__(self, build: Builder, spec: Concat, in_ch: int) -> None:
        super().__init__()
        out = 0
        for i, layers in enumerate(spec.branches):
            m, ch = build.branch(layers, in_ch)
            self.add_module(f"branch{i}", m)
            out += ch
        self.in_channels, self.out_channels = in_ch, out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.children()], 1)


class InceptionResidual(nn.Module):
    """x -> act(x + scale * proj(concat(branches(x)))); `proj` is the 1x1 "Linear" conv."""

    def __init__(
        self, build: Builder, branches: tuple[tuple[Conv, ...], ...], channels: int,
        scale: float, act: ActSpec | None,
    ) -> None:
        super().__init__()
        self.branches = Branches(build, Concat(branches), channels)
        self.proj = nn.Conv2d(self.branches.out_channels, channels, 1)
        self.scale = scale
        self.act = make_act(act) if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.proj(self.branches(x)) * self.scale + x)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class InceptionResNetV2(ConvNet):
    default_input_size = (3, 299, 299)
    paper = PAPER

    def __init__(
        self, layout: Layout = LAYOUTS["paper"], num_classes: int = 1000, in_channels: int = 3,
        act: ActSpec = "relu", dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.layout, self.num_classes = layout, num_classes
        self.default_input_size = (in_channels, 299, 299)
        build, ch = Builder(act), in_channels
        stem: OrderedDict[str, nn.Module] = OrderedDict()
        for name, spec in layout.stem:
            stem[name], ch = build.layer(spec, ch)
        self.stem = nn.Sequential(stem)
        stages = []
        for s, stage in enumerate(layout.stages):
            parts: OrderedDict[str, nn.Module] = OrderedDict()
            if stage.reduction is not None:
                parts["reduction"], ch = build.layer(stage.reduction, ch)
            blocks = []
            for i in range(stage.repeats):
                last = s == len(layout.stages) - 1 and i == stage.repeats - 1
                scale = layout.last_block_scale if last else stage.scale
                block_act = act if not last or layout.last_block_act else None
                blocks.append(InceptionResidual(build, stage.block, ch, scale, block_act))
            parts["blocks"] = nn.Sequential(*blocks)
            stages.append(nn.Sequential(parts))
        if layout.final_conv:
            stages[-1].add_module("final", build.conv(ch, layout.final_conv, 1))
            ch = layout.final_conv
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(pool_flatten(), ch, num_classes, dropout)

    @property
    def weight_sources(self) -> tuple[str, ...]:
        return ("timm",) if self.layout.stem == TF_SLIM_STEM else ()

    def key_map(self, source: str) -> dict[str, str | None]:
        """timm keeps the TF-slim stem names; its blocks are repeat, repeat_1, repeat_2 and a
        separate last block `block8`; a block's branches sit beside its 1x1 `conv2d`."""
        if source != "timm" or self.layout.stem != TF_SLIM_STEM:
            return super().key_map(source)
        m: dict[str, str | None] = {f"{name}.": f"stem.{name}." for name, _ in self.layout.stem}
        m.update({"mixed_6a.": "stages.1.reduction.", "mixed_7a.": "stages.2.reduction.",
                  "conv2d_7b.": "stages.2.final.", "classif.": "head.fc."})
        last = self.layout.stages[-1].repeats - 1
        for s, (theirs, stage) in enumerate(zip(("repeat", "repeat_1", "repeat_2"),
                                                self.layout.stages)):
            for i in range(stage.repeats):
                if s == 2 and i == last:
                    theirs_i = "block8."
                else:
                    theirs_i = f"{theirs}.{i}."
                ours = f"stages.{s}.blocks.{i}."
                m[theirs_i] = ours + "branches."
                m[theirs_i + "conv2d."] = ours + "proj."
        return m


@register_model(timm="inception_resnet_v2")
def inception_resnet_v2(**kw) -> InceptionResNetV2:
    return InceptionResNetV2(LAYOUTS["tf_slim"], **kw)


@register_model
def inception_resnet_v2_paper(**kw) -> InceptionResNetV2:
    return InceptionResNetV2(LAYOUTS["paper"], **kw)
