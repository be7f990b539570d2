"""EfficientNet B0-B7 (Tan and Le 2019, "EfficientNet: Rethinking Model Scaling for
Convolutional Neural Networks") and EfficientNet-Lite0-4 (the TensorFlow "EfficientNet-Lite"
release, 2020).

B0 is Table 1 of the paper (`B0_STAGES`); B1-B7 are B0 scaled by compound scaling: every
stage's channels times `width` (rounded to a multiple of 8, never more than 10% down), its
layer count times `depth` (rounded up), the input side `resolution`, and a larger `dropout`
before the classifier (`SCALING`). The paper gives the rule (alpha=1.2, beta=1.1, gamma=1.15
raised to phi); the coefficients of each variant are those of the official code, which
torchvision and every port use, so they are the data here.

Choices:
- All variants share `convzoo.layers.mbconv.InvertedResidual` with MobileNet v2/v3. B-variants:
  SiLU (swish), SE on every block squeezing to a quarter of the block's *input* channels with a
  SiLU inside and a sigmoid gate, stochastic depth rising linearly from 0 to 0.2 over the blocks
  (identity in evaluation), as torchvision does.
- The B-variants load torchvision's `efficientnet_b0`..`b7` state_dicts with identical outputs,
  so they keep torchvision's batch norm settings: eps=1e-5 for B0-B4 (trained in PyTorch) and
  eps=1e-3, momentum=0.01 for B5-B7 (ported from TensorFlow). They pad symmetrically.
  Counts: B0 5,288,548 parameters and 0.386G MACs at 224x224 (tested equal to torchvision for
  B0-B7).
- The final 1x1 convolution to 1280 x width channels, the pooling and the flatten sit in the
  head (`head.pre`), so the stages are the seven MBConv rows of Table 1.
- Lite: no SE, ReLU6, the stem (32) and head (1280) not scaled, and the first and last stages
  keep their layer count (the TensorFlow builder's `fix_head_stem`), batch norm eps=1e-3 and
  momentum=0.01. Lite convolutions pad like TensorFlow's 'SAME' (at stride 2 on an even input:
  nothing before, one pixel after) because the only Lite weights there are (ImageNet Lite0,
  `convzoo[weights]`) were trained in TensorFlow; with symmetric padding their logits would be
  off. Weights in the `efficientnet_lite_pytorch` (lukemelas-style) names load via
  `key_map("lukemelas")`; `create_model("efficientnet_lite0", weights="imagenet")` loads them
  with class names and preprocessing (see `convzoo.weights.efficientnet_lite`).
- `convzoo summary efficientnet_bN --convention paper` prints Table 1's columns (operator,
  input resolution, channels, layers) for any variant, with real parameters and MACs per stage.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from functools import partial
from typing import NamedTuple

from torch import nn

from ..layers.activations import ActSpec
from ..layers.init import on_meta
from ..layers.mbconv import InvertedResidual, conv_norm_act, make_divisible
from ..registry import register_model
from ..weights.efficientnet_lite import (
    load_lite0_imagenet,
    load_lite1_imagenet,
    load_lite2_imagenet,
)
from .base import ClassifierHead, ConvNet, Paper
from .mobilenet import mbconv_map


class Stage(NamedTuple):
    """A row of Table 1: MBConv<expand>, kernel k x k, first stride, channels, layers."""

    expand: int
    kernel: int
    stride: int
    channels: int
    layers: int


# Table 1 of the paper (EfficientNet-B0 baseline network). Stage 1 (Conv3x3, 32 channels) is
# the stem and stage 9 (Conv1x1 to 1280 & pooling & FC) the head.
B0_STEM, B0_HEAD = 32, 1280
B0_STAGES = (
    Stage(1, 3, 1, 16, 1),
    Stage(6, 3, 2, 24, 2),
    Stage(6, 5, 2, 40, 2),
    Stage(6, 3, 2, 80, 3),
    Stage(6, 5, 1, 112, 3),
    Stage(6, 5, 2, 192, 4),
    Stage(6, 3, 1, 320, 1),
)


class Scaling(NamedTuple):
    """One variant's compound scaling: phi and the width, depth, resolution, dropout it gives."""

    name: str
    phi: int
    width: float
    depth: float
    resolution: int
    dropout: float
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1


_TF_BN = {"bn_eps": 1e-3, "bn_momentum": 0.01}  # TensorFlow's epsilon and decay 0.99

SCALING: dict[str, Scaling] = {
    "b0": Scaling("b0", 0, 1.0, 1.0, 224, 0.2),
    "b1": Scaling("b1", 1, 1.0, 1.1, 240, 0.2),
    "b2": Scaling("b2", 2, 1.1, 1.2, 260, 0.3),
    "b3": Scaling("b3", 3, 1.2, 1.4, 300, 0.3),
    "b4": Scaling("b4", 4, 1.4, 1.8, 380, 0.4),
    "b5": Scaling("b5", 5, 1.6, 2.2, 456, 0.4, **_TF_BN),
    "b6": Scaling("b6", 6, 1.8, 2.6, 528, 0.5, **_TF_BN),
    "b7": Scaling("b7", 7, 2.0, 3.1, 600, 0.5, **_TF_BN),
    # EfficientNet-Lite (efficientnet_lite_builder.py of the TensorFlow release).
    "lite0": Scaling("lite0", 0, 1.0, 1.0, 224, 0.2, **_TF_BN),
    "lite1": Scaling("lite1", 1, 1.0, 1.1, 240, 0.2, **_TF_BN),
    "lite2": Scaling("lite2", 2, 1.1, 1.2, 260, 0.3, **_TF_BN),
    "lite3": Scaling("lite3", 3, 1.2, 1.4, 280, 0.3, **_TF_BN),
    "lite4": Scaling("lite4", 4, 1.4, 1.8, 300, 0.3, **_TF_BN),
}

PAPER = Paper(
    short="Tan & Le 2019",
    citation="M. Tan, Q. V. Le. EfficientNet: Rethinking Model Scaling for Convolutional Neural "
    "Networks. ICML 2019 (arXiv:1905.11946)",
    table="Table 1 (EfficientNet-B0 baseline network); section 3.3 (compound scaling)",
    url="https://arxiv.org/abs/1905.11946",
)

LITE_PAPER = Paper(
    short="Tan & Le 2019 (Lite, 2020)",
    citation="EfficientNet-Lite: M. Tan, Q. V. Le, EfficientNet (ICML 2019, arXiv:1905.11946) "
    "adapted for mobile accelerators in the TensorFlow TPU repository (models/official/"
    "efficientnet/lite, 2020): no squeeze-and-excitation, ReLU6, fixed stem and head",
    table="Table 1 of the paper; efficientnet_lite_builder.py (Lite coefficients)",
    url="https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite",
)


class Flavour(NamedTuple):
    """What separates the B-family from the Lite family, beyond the scaling coefficients."""

    act: str
    se_ratio: float  # squeeze width relative to the block's input channels; 0: no SE
    scale_stem_head: bool  # False: stem, head and the first and last stages' depth are fixed
    padding: str  # "symmetric" (torchvision) or "tf_same" (TensorFlow-trained weights)
    paper: Paper


B_FLAVOUR = Flavour("silu", 0.25, True, "symmetric", PAPER)
LITE_FLAVOUR = Flavour("relu6", 0.0, False, "tf_same", LITE_PAPER)


class EfficientNet(ConvNet):
    paper = PAPER

    def __init__(
        self, scaling: Scaling, flavour: Flavour = B_FLAVOUR, num_classes: int = 1000,
        in_channels: int = 3, act: ActSpec = None, dropout: float | None = None,
        stochastic_depth: float = 0.2, stages: tuple[Stage, ...] = B0_STAGES,
    ) -> None:
        super().__init__()
        self.scaling, self.flavour, self.num_classes = scaling, flavour, num_classes
        self.paper = flavour.paper
        self.default_input_size = (in_channels, scaling.resolution, scaling.resolution)
        act = flavour.act if act is None else act
        dropout = scaling.dropout if dropout is None else dropout
        norm = partial(nn.BatchNorm2d, eps=scaling.bn_eps, momentum=scaling.bn_momentum)
        scaled = flavour.scale_stem_head

        def width(c: int) -> int:
            return make_divisible(c * scaling.width)

        ch = width(B0_STEM) if scaled else B0_STEM
        self.stem = conv_norm_act(in_channels, ch, 3, 2, norm=norm, act=act,
                                  padding=flavour.padding)
        repeats = [s.layers if not scaled and i in (0, len(stages) - 1)
                   else math.ceil(s.layers * scaling.depth) for i, s in enumerate(stages)]
        total, index = sum(repeats), 0
        built = []
        for stage, n in zip(stages, repeats):
            out = width(stage.channels)
            blocks = []
            for j in range(n):
                se_ch = max(1, int(ch * flavour.se_ratio)) if flavour.se_ratio > 0 else 0
                blocks.append(InvertedResidual(
                    ch, out, make_divisible(ch * stage.expand), stage.kernel,
                    stage.stride if j == 0 else 1, act=act, se_ch=se_ch, se_act=act,
                    se_gate="sigmoid", norm=norm, drop_path=stochastic_depth * index / total,
                    padding=flavour.padding))
                ch, index = out, index + 1
            built.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(built)
        head = width(B0_HEAD) if scaled else B0_HEAD
        pre = nn.Sequential(OrderedDict(
            conv=conv_norm_act(ch, head, 1, norm=norm, act=act),
            pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(1)))
        self.head = ClassifierHead(pre, head, num_classes, dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        if on_meta(self):  # shapes only (summary, list)
            return
        # As torchvision: He (fan-out) for convolutions, uniform +-1/sqrt(classes) for the
        # classifier, which the TensorFlow code also uses.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                r = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -r, r)
                nn.init.zeros_(m.bias)

    @property
    def weight_sources(self) -> tuple[str, ...]:
        return ("torchvision",) if self.flavour is B_FLAVOUR else ("lukemelas",)

    def key_map(self, source: str) -> dict[str, str | None]:
        """torchvision (`features.i`, `classifier.1`) or lukemelas-style (`_blocks.N._...`)."""
        if source == "torchvision":
            m: dict[str, str | None] = {"features.0.0.": "stem.conv.",
                                        "features.0.1.": "stem.bn."}
            for s, stage in enumerate(self.stages):
                for j, block in enumerate(stage):
                    m.update(mbconv_map(f"features.{s + 1}.{j}.block.", f"stages.{s}.{j}.",
                                        block))
            last = len(self.stages) + 1
            m.update({f"features.{last}.0.": "head.pre.conv.conv.",
                      f"features.{last}.1.": "head.pre.conv.bn.", "classifier.1.": "head.fc."})
            return m
        if source == "lukemelas":
            m = {"_conv_stem.": "stem.conv.", "_bn0.": "stem.bn.",
                 "_conv_head.": "head.pre.conv.conv.", "_bn1.": "head.pre.conv.bn.",
                 "_fc.": "head.fc."}
            n = 0
            for s, stage in enumerate(self.stages):
                for j, _ in enumerate(stage):
                    m.update({f"_blocks.{n}.{theirs}.": f"stages.{s}.{j}.{part}."
                              for theirs, part in _LUKEMELAS_BLOCK.items()})
                    n += 1
            return m
        return super().key_map(source)


# A lukemelas-style block's children and where they live in `InvertedResidual`.
_LUKEMELAS_BLOCK = {
    "_expand_conv": "expand.conv", "_bn0": "expand.bn", "_depthwise_conv": "dw.conv",
    "_bn1": "dw.bn", "_se_reduce": "se.fc1", "_se_expand": "se.fc2",
    "_project_conv": "project.conv", "_bn2": "project.bn",
}


@register_model(torchvision="efficientnet_b0")
def efficientnet_b0(**kw) -> EfficientNet:
    return EfficientNet(SCALING["b0"], **kw)


@register_model(torchvision="efficientnet_b1")
def efficientnet_b1(**kw) -> EfficientNet:
    return EfficientNet(SCALING["b1"], **kw)


@register_model(torchvision="efficientnet_b2")
def efficientnet_b2(**kw) -> EfficientNet:
    return EfficientNet(SCALING["b2"], **kw)


@register_model(torchvision="efficientnet_b3")
def efficientnet_b3(**kw) -> EfficientNet:
    return EfficientNet(SCALING["b3"], **kw)


@register_model(torchvision="efficientnet_b4")
def efficientnet_b4(**kw) -> EfficientNet:
    return EfficientNet(SCALING["b4"], **kw)


@register_model(torchvision="efficientnet_b5")
def efficientnet_b5(**kw) -> EfficientNet:
    return EfficientNet(SCALING["b5"], **kw)


@register_model(torchvision="efficientnet_b6")
def efficientnet_b6(**kw) -> EfficientNet:
    return EfficientNet(SCALING["b6"], **kw)


@register_model(torchvision="efficientnet_b7")
def efficientnet_b7(**kw) -> EfficientNet:
    return EfficientNet(SCALING["b7"], **kw)


@register_model(pretrained={"imagenet": load_lite0_imagenet})
def efficientnet_lite0(**kw) -> EfficientNet:
    return EfficientNet(SCALING["lite0"], LITE_FLAVOUR, **kw)


@register_model(pretrained={"imagenet": load_lite1_imagenet})
def efficientnet_lite1(**kw) -> EfficientNet:
    return EfficientNet(SCALING["lite1"], LITE_FLAVOUR, **kw)


@register_model(pretrained={"imagenet": load_lite2_imagenet})
def efficientnet_lite2(**kw) -> EfficientNet:
    return EfficientNet(SCALING["lite2"], LITE_FLAVOUR, **kw)


@register_model
def efficientnet_lite3(**kw) -> EfficientNet:
    return EfficientNet(SCALING["lite3"], LITE_FLAVOUR, **kw)


@register_model
def efficientnet_lite4(**kw) -> EfficientNet:
    return EfficientNet(SCALING["lite4"], LITE_FLAVOUR, **kw)
