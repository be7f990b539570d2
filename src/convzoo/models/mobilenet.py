"""MobileNet v1, v2 and v3.

v1: Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", Table 1 (body), section 4.2 and 4.3 (width multiplier alpha, resolution rho).
v2: Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks", Table 2.
v3: Howard et al. 2019, "Searching for MobileNetV3", Table 1 (large) and Table 2 (small).

Choices:
- v1 is a stem convolution and 13 depthwise separable layers (3x3 depthwise + BN + ReLU, then 1x1
  pointwise + BN + ReLU), grouped into five stages at the stride-2 layers, then global average
  pooling and one fully connected layer. Table 1 prints the second-to-last depthwise layer as
  "Conv dw / s2" on a 7x7 input giving a 7x7 output: a typo, the layer has stride 1 (every
  implementation, and the table's own output sizes, say so).
- v1's width multiplier alpha scales every layer's channels to int(alpha * c), at least 8 (as
  the TensorFlow reference does with min_depth=8); `resolution` sets the default input side.
  No dropout: the paper trains v1 with little regularisation (section 4) and names none.
  Counts at 224x224 (convzoo summary): alpha 1.0: 4,231,976 parameters, 568,740,352 MACs
  (paper, Tables 6/8: 4.2M and 569M); alpha 0.75: 2,585,560 / 325,400,448 (2.6M / 325M);
  alpha 0.5: 1,331,592 / 149,497,088 (1.3M / 149M); alpha 0.25: 470,072 / 41,030,272 (0.5M /
  41M). Resolution 192/160/128 at alpha 1: 418,121,728 / 290,675,200 / 186,400,768 MACs
  (Table 7: 418M / 290M / 186M, parameters unchanged).
  Parameters include the batch norms' scales and shifts and the classifier's biases.
- v2 and v3 use the one inverted residual block of `convzoo.layers.mbconv` and load torchvision's
  `mobilenet_v2`, `mobilenet_v3_large`, `mobilenet_v3_small` state_dicts with identical outputs:
  v2 3,504,872 parameters, v3-large 5,483,032, v3-small 2,542,856.
- v2: one stage per row of Table 2; the final 1x1 convolution to 1280 channels sits in the head
  (before the pooling), so the stages are exactly the table's bottleneck rows. Dropout 0.2
  before the classifier, as torchvision trains it. Width multipliers round channels to
  multiples of 8 and keep the last convolution at 1280 below 1.0 (paper, section 6.1.1).
- v3: the table's rows, grouped into stages at the stride-2 rows. SE squeezes to
  make_divisible(expanded / 4, 8) channels with a ReLU inside and a hard-sigmoid gate. As in
  torchvision, the head is 1x1 conv + BN + h-swish, pooling, then a fully connected layer
  (the paper's "conv2d 1x1, NBN") with h-swish, dropout 0.2 and the classifier; batch norm
  uses eps=1e-3, momentum=0.01 as in the TensorFlow original. `act` replaces both the ReLU
  and h-swish of the body (the SE keeps its ReLU and hard-sigmoid).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import NamedTuple

from torch import nn

from ..layers.activations import ActSpec, make_act
from ..layers.conv import ConvNormAct
from ..layers.init import he_init, linear_normal
from ..layers.mbconv import InvertedResidual, make_divisible
from ..registry import register_model
from .base import ClassifierHead, ConvNet, Paper, pool_flatten

# --------------------------------------------------------------------------------------------
# MobileNet v1


class SepRow(NamedTuple):
    """A depthwise separable layer: 3x3 depthwise with `stride`, then 1x1 to `channels`."""

    stride: int
    channels: int


class V1Layout(NamedTuple):
    stem_channels: int
    layers: tuple[SepRow, ...]


# Table 1 of Howard et al. 2017 (MobileNet body architecture), the stem "Conv / s2" 3x3x32
# followed by the "Conv dw / Conv" pairs; the second-to-last dw stride corrected to 1.
V1_TABLE = V1Layout(32, (
    SepRow(1, 64),
    SepRow(2, 128), SepRow(1, 128),
    SepRow(2, 256), SepRow(1, 256),
    SepRow(2, 512), *(SepRow(1, 512),) * 5,
    SepRow(2, 1024), SepRow(1, 1024),
))

V1_PAPER = Paper(
    short="Howard et al. 2017",
    citation="A. G. Howard, M. Zhu, B. Chen, D. Kalenichenko, W. Wang, T. Weyand, M. Andreetto, "
    "H. Adam. MobileNets: Efficient Convolutional Neural Networks for Mobile Vision "
    "Applications. arXiv:1704.04861, 2017",
    table="Table 1 (body architecture); Tables 6-7 (width multiplier, resolution)",
    url="https://arxiv.org/abs/1704.04861",
)


class MobileNetV1(ConvNet):
    paper = V1_PAPER

    def __init__(
        self, layout: V1Layout, alpha: float = 1.0, resolution: int = 224,
        num_classes: int = 1000, in_channels: int = 3, act: ActSpec = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"width multiplier alpha must be positive, got {alpha}")
        self.alpha, self.num_classes = alpha, num_classes
        self.default_input_size = (in_channels, resolution, resolution)

        def width(c: int) -> int:
            return max(8, int(c * alpha))

        ch = width(layout.stem_channels)
        self.stem = ConvNormAct(in_channels, ch, 3, 2, act=act)
        stages: list[list[nn.Module]] = []
        for row in layout.layers:
            if row.stride == 2 or not stages:
                stages.append([])
            out = width(row.channels)
            stages[-1].append(nn.Sequential(OrderedDict(
                dw=ConvNormAct(ch, ch, 3, row.stride, padding=1, groups=ch, act=act),
                pw=ConvNormAct(ch, out, 1, act=act),
            )))
            ch = out
        self.stages = nn.ModuleList(nn.Sequential(*s) for s in stages)
        self.head = ClassifierHead(pool_flatten(), ch, num_classes, dropout)
        he_init(self, linear_normal(0.01))


# --------------------------------------------------------------------------------------------
# MobileNet v2


class V2Row(NamedTuple):
    """A row of Table 2: expansion t, output channels c, repeats n, first stride s."""

    t: int
    c: int
    n: int
    s: int


class V2Layout(NamedTuple):
    stem_channels: int
    rows: tuple[V2Row, ...]
    last_channels: int


# Table 2 of Sandler et al. 2018: conv2d 3x3/2 to 32, seven bottleneck rows, conv2d 1x1 to 1280.
V2_TABLE = V2Layout(32, (
    V2Row(1, 16, 1, 1),
    V2Row(6, 24, 2, 2),
    V2Row(6, 32, 3, 2),
    V2Row(6, 64, 4, 2),
    V2Row(6, 96, 3, 1),
    V2Row(6, 160, 3, 2),
    V2Row(6, 320, 1, 1),
), 1280)

V2_PAPER = Paper(
    short="Sandler et al. 2018",
    citation="M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen. MobileNetV2: Inverted "
    "Residuals and Linear Bottlenecks. CVPR 2018 (arXiv:1801.04381)",
    table="Table 2 (MobileNetV2 body)",
    url="https://arxiv.org/abs/1801.04381",
)


def _conv_head(in_ch: int, out_ch: int, act: ActSpec, norm=None) -> nn.Sequential:
    """1x1 conv + BN + act to the head's width, then global pooling to a vector."""
    conv = ConvNormAct(in_ch, out_ch, 1, act=act, norm=norm or "bn")
    return nn.Sequential(OrderedDict(conv=conv, pool=nn.AdaptiveAvgPool2d(1),
                                     flatten=nn.Flatten(1)))


class MobileNetV2(ConvNet):
    paper = V2_PAPER
    weight_sources = ("torchvision",)

    def __init__(
        self, layout: V2Layout, width_mult: float = 1.0, num_classes: int = 1000,
        in_channels: int = 3, act: ActSpec = "relu6", dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.layout, self.num_classes = layout, num_classes
        ch = make_divisible(layout.stem_channels * width_mult)
        self.stem = ConvNormAct(in_channels, ch, 3, 2, act=act)
        stages = []
        for row in layout.rows:
            out = make_divisible(row.c * width_mult)
            blocks = []
            for i in range(row.n):
                blocks.append(InvertedResidual(ch, out, int(round(ch * row.t)), 3,
                                               row.s if i == 0 else 1, act=act))
                ch = out
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        last = make_divisible(layout.last_channels * max(1.0, width_mult))
        self.head = ClassifierHead(_conv_head(ch, last, act), last, num_classes, dropout)
        he_init(self, linear_normal(0.01))

    def key_map(self, source: str) -> dict[str, str | None]:
        """torchvision: `features` = stem, the blocks one after another, the last conv."""
        if source != "torchvision":
            return super().key_map(source)
        m = _features_map(self.stages, "conv.", _v2_block_map)
        m["classifier.1."] = "head.fc."
        return m


def _v2_block_map(tv: str, ours: str, block: InvertedResidual) -> dict[str, str | None]:
    # torchvision's v2 block: [expand (conv, bn)], dw (conv, bn), then project conv, project bn
    # as two separate entries of one Sequential.
    m: dict[str, str | None] = {}
    k = 0
    for part in block.parts:
        if part == "project":
            m[f"{tv}{k}."] = f"{ours}project.conv."
            m[f"{tv}{k + 1}."] = f"{ours}project.bn."
        else:
            m[f"{tv}{k}.0."] = f"{ours}{part}.conv."
            m[f"{tv}{k}.1."] = f"{ours}{part}.bn."
            k += 1
    return m


def mbconv_map(tv: str, ours: str, block: InvertedResidual) -> dict[str, str | None]:
    """torchvision's v3/EfficientNet block: `block.i` for each part, conv `0` and norm `1`."""
    m: dict[str, str | None] = {}
    for k, part in enumerate(block.parts):
        if part == "se":
            m[f"{tv}{k}."] = f"{ours}se."
        else:
            m[f"{tv}{k}.0."] = f"{ours}{part}.conv."
            m[f"{tv}{k}.1."] = f"{ours}{part}.bn."
    return m


# --------------------------------------------------------------------------------------------
# MobileNet v3


class V3Row(NamedTuple):
    """A row of Tables 1/2: kernel, expanded size (#exp), output (#out), SE, NL, stride."""

    kernel: int
    exp: int
    out: int
    se: bool
    nl: str  # "RE" (ReLU) or "HS" (h-swish)
    stride: int


class V3Layout(NamedTuple):
    stem_channels: int
    rows: tuple[V3Row, ...]
    head_conv: int
    head_fc: int


# Table 1 of Howard et al. 2019 (MobileNetV3-Large).
V3_LARGE = V3Layout(16, (
    V3Row(3, 16, 16, False, "RE", 1),
    V3Row(3, 64, 24, False, "RE", 2),
    V3Row(3, 72, 24, False, "RE", 1),
    V3Row(5, 72, 40, True, "RE", 2),
    V3Row(5, 120, 40, True, "RE", 1),
    V3Row(5, 120, 40, True, "RE", 1),
    V3Row(3, 240, 80, False, "HS", 2),
    V3Row(3, 200, 80, False, "HS", 1),
    V3Row(3, 184, 80, False, "HS", 1),
    V3Row(3, 184, 80, False, "HS", 1),
    V3Row(3, 480, 112, True, "HS", 1),
    V3Row(3, 672, 112, True, "HS", 1),
    V3Row(5, 672, 160, True, "HS", 2),
    V3Row(5, 960, 160, True, "HS", 1),
    V3Row(5, 960, 160, True, "HS", 1),
), head_conv=960, head_fc=1280)

# Table 2 of Howard et al. 2019 (MobileNetV3-Small).
V3_SMALL = V3Layout(16, (
    V3Row(3, 16, 16, True, "RE", 2),
    V3Row(3, 72, 24, False, "RE", 2),
    V3Row(3, 88, 24, False, "RE", 1),
    V3Row(5, 96, 40, True, "HS", 2),
    V3Row(5, 240, 40, True, "HS", 1),
    V3Row(5, 240, 40, True, "HS", 1),
    V3Row(5, 120, 48, True, "HS", 1),
    V3Row(5, 144, 48, True, "HS", 1),
    V3Row(5, 288, 96, True, "HS", 2),
    V3Row(5, 576, 96, True, "HS", 1),
    V3Row(5, 576, 96, True, "HS", 1),
), head_conv=576, head_fc=1024)

V3_PAPER = Paper(
    short="Howard et al. 2019",
    citation="A. Howard, M. Sandler, G. Chu, L.-C. Chen, B. Chen, M. Tan, W. Wang, Y. Zhu, "
    "R. Pang, V. Vasudevan, Q. V. Le, H. Adam. Searching for MobileNetV3. ICCV 2019 "
    "(arXiv:1905.02244)",
    table="Table 1 (MobileNetV3-Large), Table 2 (MobileNetV3-Small)",
    url="https://arxiv.org/abs/1905.02244",
)

_V3_NL = {"RE": "relu", "HS": "hardswish"}


class MobileNetV3(ConvNet):
    paper = V3_PAPER
    weight_sources = ("torchvision",)

    def __init__(
        self, layout: V3Layout, width_mult: float = 1.0, num_classes: int = 1000,
        in_channels: int = 3, act: ActSpec = None, dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.layout, self.num_classes = layout, num_classes
        norm = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)

        def nl(name: str) -> ActSpec:
            return _V3_NL[name] if act is None else act

        def width(c: int) -> int:
            return make_divisible(c * width_mult)

        ch = width(layout.stem_channels)
        self.stem = ConvNormAct(in_channels, ch, 3, 2, norm=norm, act=nl("HS"))
        stages: list[list[nn.Module]] = []
        for row in layout.rows:
            if row.stride == 2 or not stages:
                stages.append([])
            exp, out = width(row.exp), width(row.out)
            se_ch = make_divisible(exp // 4) if row.se else 0
            stages[-1].append(InvertedResidual(
                ch, out, exp, row.kernel, row.stride, act=nl(row.nl), se_ch=se_ch,
                se_act="relu", se_gate="hardsigmoid", norm=norm))
            ch = out
        self.stages = nn.ModuleList(nn.Sequential(*s) for s in stages)
        head_conv, head_fc = width(layout.head_conv), width(layout.head_fc)
        pre = _conv_head(ch, head_conv, nl("HS"), norm)
        pre.add_module("fc1", nn.Linear(head_conv, head_fc))
        pre.add_module("act1", make_act(nl("HS")))
        self.head = ClassifierHead(pre, head_fc, num_classes, dropout)
        he_init(self, linear_normal(0.01))

    def key_map(self, source: str) -> dict[str, str | None]:
        """torchvision: `features` = stem, each block, the last conv; `classifier` = fc, fc."""
        if source != "torchvision":
            return super().key_map(source)
        m = _features_map(self.stages, "block.", mbconv_map)
        m["classifier.0."] = "head.pre.fc1."
        m["classifier.3."] = "head.fc."
        return m


@register_model
def mobilenet_v1(**kw) -> MobileNetV1:
    return MobileNetV1(V1_TABLE, **kw)


@register_model
def mobilenet_v1_075(**kw) -> MobileNetV1:
    return MobileNetV1(V1_TABLE, alpha=0.75, **kw)


@register_model
def mobilenet_v1_050(**kw) -> MobileNetV1:
    return MobileNetV1(V1_TABLE, alpha=0.5, **kw)


@register_model
def mobilenet_v1_025(**kw) -> MobileNetV1:
    return MobileNetV1(V1_TABLE, alpha=0.25, **kw)


@register_model(torchvision="mobilenet_v2")
def mobilenet_v2(**kw) -> MobileNetV2:
    return MobileNetV2(V2_TABLE, **kw)


@register_model(torchvision="mobilenet_v3_large")
def mobilenet_v3_large(**kw) -> MobileNetV3:
    return MobileNetV3(V3_LARGE, **kw)


@register_model(torchvision="mobilenet_v3_small")
def mobilenet_v3_small(**kw) -> MobileNetV3:
    return MobileNetV3(V3_SMALL, **kw)


def _features_map(stages: nn.ModuleList, inner: str, block_map) -> dict[str, str | None]:
    """torchvision's `features`: the stem, every block in order, then the last 1x1 conv."""
    m: dict[str, str | None] = {"features.0.0.": "stem.conv.", "features.0.1.": "stem.bn."}
    i = 1
    for s, stage in enumerate(stages):
        for j, block in enumerate(stage):
            m.update(block_map(f"features.{i}.{inner}", f"stages.{s}.{j}.", block))
            i += 1
    m[f"features.{i}.0."] = "head.pre.conv.conv."
    m[f"features.{i}.1."] = "head.pre.conv.bn."
    return m
