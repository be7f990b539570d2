"""ResNet (He et al. 2015, "Deep Residual Learning for Image Recognition"): Table 1's ImageNet
networks, section 4.2's CIFAR-10 networks, their plain counterparts, and SE-ResNet (Hu et al.
2018, "Squeeze-and-Excitation Networks").

One class builds them all; a row of `TABLE1` or `CIFAR` says which stem, which block, how many
blocks and how wide. Options:
- `stride_in`: where a bottleneck block that halves the map puts its stride. The paper (v1,
  `resnet50_v1` ...) strides the first 1x1 convolution; torchvision (v1.5, `resnet50` ...)
  strides the 3x3 one, which costs more (4.09G MACs against 3.86G for ResNet-50) and is what
  torchvision's and timm's weights expect. Basic blocks stride their first 3x3 either way, so
  18 and 34 layers are the same in v1 and v1.5.
- `shortcut` (section 3.3): "A" identity, with the map subsampled by the stride and the new
  channels zero-padded where the shape changes (no parameters); "B" a 1x1 projection (with
  batch norm) only where the shape changes, identity elsewhere (the ImageNet default); "C"
  projections on every block. The CIFAR networks use A, as in the paper.
- `residual=False` drops the shortcuts: the plain networks of Figure 3 / Figure 6
  (`plain18`, `plain34`, `plain20` ... `plain110`).
- `se_reduction`: a squeeze-and-excitation gate (`convzoo.layers.SqueezeExcite`) on the
  residual branch, after its last batch norm and before the addition (Hu et al. Figure 3),
  with C / reduction channels. `se_resnet50/101/152` use 16 and match timm's
  `seresnet50/101/152`: v1.5 strides, option B, SE after the last bn of every bottleneck.
  timm rounds the squeezed width to a multiple of 8, which C / 16 already is for every
  bottleneck width (256 ... 2048), so the counts agree.

Batch norm follows every convolution, the stem is 7x7/2 convolution and 3x3/2 max-pool for
ImageNet and one 3x3 convolution with 16 filters for CIFAR (default input 3x32x32, 10
classes), and the head is global average pooling and one linear layer; ResNet has no dropout.
Convolutions start from He initialisation (normal, fan-out, as torchvision does), batch norm
from 1 and 0 (timm starts each block's last batch norm at 0; loaded weights make them equal).
Table 1's "FLOPs" are multiply-adds of v1: `convzoo summary resnet50_v1 --convention paper`
prints them beside the real MACs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserInputError
from ..layers import ConvNormAct, SqueezeExcite, make_norm
from ..layers.activations import ActSpec, make_act
from ..layers.init import he_init
from ..registry import register_model
from .base import ClassifierHead, ConvNet, Paper, pool_flatten


class Arch(NamedTuple):
    """One column of Table 1 (ImageNet) or one depth of section 4.2 (CIFAR-10)."""

    depth: int
    block: str  # "basic" (two 3x3) or "bottleneck" (1x1, 3x3, 1x1 with 4x the width out)
    blocks: tuple[int, ...]  # blocks per stage
    widths: tuple[int, ...]  # the 3x3 convolutions' filters per stage
    stem: str  # "imagenet" (7x7/2 conv 64, 3x3/2 max-pool) or "cifar" (3x3 conv 16)
    paper_gflops: float | None = None  # Table 1's "FLOPs" (multiply-adds, v1), x10^9
    input_side: int | None = None  # default input side; None: 32 (CIFAR) or 224 (ImageNet)


IMAGENET_WIDTHS = (64, 128, 256, 512)

# Table 1 (architectures for ImageNet).
TABLE1: dict[int, Arch] = {
    18: Arch(18, "basic", (2, 2, 2, 2), IMAGENET_WIDTHS, "imagenet", 1.8),
    34: Arch(34, "basic", (3, 4, 6, 3), IMAGENET_WIDTHS, "imagenet", 3.6),
    50: Arch(50, "bottleneck", (3, 4, 6, 3), IMAGENET_WIDTHS, "imagenet", 3.8),
    101: Arch(101, "bottleneck", (3, 4, 23, 3), IMAGENET_WIDTHS, "imagenet", 7.6),
    152: Arch(152, "bottleneck", (3, 8, 36, 3), IMAGENET_WIDTHS, "imagenet", 11.3),
}

# Section 4.2 (CIFAR-10): 6n+2 layers, three stages of n basic blocks with 16, 32, 64 filters.
CIFAR: dict[int, Arch] = {
    depth: Arch(depth, "basic", ((depth - 2) // 6,) * 3, (16, 32, 64), "cifar")
    for depth in (20, 32, 44, 56, 110, 1202)
}

PAPER = Paper(
    short="He et al. 2015",
    citation="K. He, X. Zhang, S. Ren, J. Sun. Deep Residual Learning for Image Recognition. "
    "CVPR 2016 (arXiv:1512.03385)",
    table="Table 1 (architectures for ImageNet); section 4.2 (CIFAR-10 networks)",
    url="https://arxiv.org/abs/1512.03385",
)
SE_PAPER = Paper(
    short="Hu et al. 2018",
    citation="J. Hu, L. Shen, S. Albanie, G. Sun, E. Wu. Squeeze-and-Excitation Networks. "
    "CVPR 2018 (arXiv:1709.01507)",
    table="Table 1 (SE-ResNet-50), Figure 3 (SE-ResNet module)",
    url="https://arxiv.org/abs/1709.01507",
)


class PadShortcut(nn.Module):
    """Option A: identity, subsampled by the stride, with the new channels filled by zeros."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.extra, self.stride = out_ch - in_ch, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra)) if self.extra else x

    def extra_repr(self) -> str:
        return f"pad_channels={self.extra}, stride={self.stride}"


def make_shortcut(option: str, in_ch: int, out_ch: int, stride: int) -> nn.Module:
    changes = in_ch != out_ch or stride != 1
    if option == "C" or (option == "B" and changes):
        return ConvNormAct(in_ch, out_ch, 1, stride, act=None)
    if option == "A" and changes:
        return PadShortcut(in_ch, out_ch, stride)
    return nn.Identity()


class Block(nn.Module):
    """A residual (or plain) block: convolutions, optional SE gate, shortcut, activation.

    Basic: 3x3, 3x3. Bottleneck: 1x1, 3x3, 1x1 with 4x the width out. The last convolution has
    no activation of its own: it comes after the addition.
    """

    def __init__(
        self, kind: str, in_ch: int, width: int, stride: int, act: ActSpec,
        shortcut: str | None, stride_in: str, se_reduction: int | None,
    ) -> None:
        super().__init__()
        self.kind = kind
        if kind == "basic":
            self.out_channels = width
            self.conv1 = ConvNormAct(in_ch, width, 3, stride, act=act)
            self.conv2 = ConvNormAct(width, width, 3, act=None)
        else:
            self.out_channels = width * 4
            s1, s3 = (stride, 1) if stride_in == "1x1" else (1, stride)
            self.conv1 = ConvNormAct(in_ch, width, 1, s1, act=act)
            self.conv2 = ConvNormAct(width, width, 3, s3, act=act)
            self.conv3 = ConvNormAct(width, self.out_channels, 1, act=None)
        out = self.out_channels
        self.se = SqueezeExcite(out, out // se_reduction, act=act) if se_reduction else None
        self.shortcut = make_shortcut(shortcut, in_ch, out, stride) if shortcut else None
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        if self.kind == "bottleneck":
            y = self.conv3(y)
        if self.se is not None:
            y = self.se(y)
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return self.act(y)

    def layout(self) -> list[tuple[int, int]]:
        """(kernel, filters) of each convolution on the residual branch."""
        convs = [self.conv1, self.conv2] + ([self.conv3] if self.kind == "bottleneck" else [])
        return [(c.conv.kernel_size[0], c.out_channels) for c in convs]


class ResNet(ConvNet):
    paper = PAPER

    def __init__(
        self, arch: Arch, num_classes: int | None = None, in_channels: int = 3,
        act: ActSpec = "relu", shortcut: str | None = None, residual: bool = True,
        stride_in: str = "3x3", se_reduction: int | None = None, dropout: float = 0.0,
    ) -> None:
        super().__init__()
        cifar = arch.stem == "cifar"
        shortcut = shortcut or ("A" if cifar else "B")
        if shortcut not in ("A", "B", "C"):
            raise UserInputError(f"shortcut must be 'A', 'B' or 'C' (He et al. section 3.3), "
                                 f"not {shortcut!r}")
        if stride_in not in ("1x1", "3x3"):
            raise UserInputError(f"stride_in must be '1x1' (v1, the paper) or '3x3' (v1.5, "
                                 f"torchvision), not {stride_in!r}")
        self.arch, self.residual, self.stride_in = arch, residual, stride_in
        self.shortcut, self.se_reduction = shortcut, se_reduction
        self.num_classes = (10 if cifar else 1000) if num_classes is None else num_classes
        side = arch.input_side or (32 if cifar else 224)
        self.default_input_size = (in_channels, side, side)
        if se_reduction:
            self.paper = SE_PAPER

        stem_ch = 16 if cifar else 64
        stem: OrderedDict[str, nn.Module] = OrderedDict(
            conv=nn.Conv2d(in_channels, stem_ch, 3 if cifar else 7, 1 if cifar else 2,
                           1 if cifar else 3, bias=False),
            bn=make_norm("bn", stem_ch), act=make_act(act))
        if not cifar:
            stem["pool"] = nn.MaxPool2d(3, 2, 1)
        self.stem = nn.Sequential(stem)

        ch, stages = stem_ch, []
        for i, (n, width) in enumerate(zip(arch.blocks, arch.widths, strict=True)):
            blocks = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                block = Block(arch.block, ch, width, stride, act,
                              shortcut if residual else None, stride_in, se_reduction)
                blocks.append(block)
                ch = block.out_channels
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(pool_flatten(), ch, self.num_classes, dropout)
        he_init(self)

    @property
    def _torchvision_layout(self) -> bool:
        return (self.arch.stem == "imagenet" and self.residual and self.shortcut == "B"
                and self.stride_in == "3x3")

    @property
    def weight_sources(self) -> tuple[str, ...]:
        if not self._torchvision_layout:
            return ()
        return ("timm",) if self.se_reduction else ("torchvision", "timm")

    def key_map(self, source: str) -> dict[str, str | None]:
        """torchvision and timm name the blocks layerI.J with conv1/bn1 ... and downsample."""
        if source not in self.weight_sources:
            return super().key_map(source)
        m: dict[str, str | None] = {"conv1.": "stem.conv.", "bn1.": "stem.bn.",
                                    "fc.": "head.fc."}
        for i, stage in enumerate(self.stages):
            for j, block in enumerate(stage):
                theirs, ours = f"layer{i + 1}.{j}.", f"stages.{i}.{j}."
                m[theirs] = ours
                for k in range(1, len(block.layout()) + 1):
                    m[f"{theirs}conv{k}."] = f"{ours}conv{k}.conv."
                    m[f"{theirs}bn{k}."] = f"{ours}conv{k}.bn."
                m[f"{theirs}downsample.0."] = f"{ours}shortcut.conv."
                m[f"{theirs}downsample.1."] = f"{ours}shortcut.bn."
        return m

# ImageNet, v1.5 (torchvision's layout and weights).
@register_model(torchvision="resnet18", timm="resnet18")
def resnet18(**kw) -> ResNet:
    return ResNet(TABLE1[18], **kw)


@register_model(torchvision="resnet34", timm="resnet34")
def resnet34(**kw) -> ResNet:
    return ResNet(TABLE1[34], **kw)


@register_model(torchvision="resnet50", timm="resnet50")
def resnet50(**kw) -> ResNet:
    return ResNet(TABLE1[50], **kw)


@register_model(torchvision="resnet101", timm="resnet101")
def resnet101(**kw) -> ResNet:
    return ResNet(TABLE1[101], **kw)


@register_model(torchvision="resnet152", timm="resnet152")
def resnet152(**kw) -> ResNet:
    return ResNet(TABLE1[152], **kw)


# ImageNet, v1 (the paper: stride in the first 1x1).
@register_model
def resnet50_v1(**kw) -> ResNet:
    return ResNet(TABLE1[50], stride_in="1x1", **kw)


@register_model
def resnet101_v1(**kw) -> ResNet:
    return ResNet(TABLE1[101], stride_in="1x1", **kw)


@register_model
def resnet152_v1(**kw) -> ResNet:
    return ResNet(TABLE1[152], stride_in="1x1", **kw)


# Plain ImageNet networks (Table 2, Figure 4 left).
@register_model
def plain18(**kw) -> ResNet:
    return ResNet(TABLE1[18], residual=False, **kw)


@register_model
def plain34(**kw) -> ResNet:
    return ResNet(TABLE1[34], residual=False, **kw)


# CIFAR-10 (section 4.2, Table 6), option A.
@register_model
def resnet20(**kw) -> ResNet:
    return ResNet(CIFAR[20], **kw)


@register_model
def resnet32(**kw) -> ResNet:
    return ResNet(CIFAR[32], **kw)


@register_model
def resnet44(**kw) -> ResNet:
    return ResNet(CIFAR[44], **kw)


@register_model
def resnet56(**kw) -> ResNet:
    return ResNet(CIFAR[56], **kw)


@register_model
def resnet110(**kw) -> ResNet:
    return ResNet(CIFAR[110], **kw)


@register_model
def resnet1202(**kw) -> ResNet:
    return ResNet(CIFAR[1202], **kw)


@register_model
def plain20(**kw) -> ResNet:
    return ResNet(CIFAR[20], residual=False, **kw)


@register_model
def plain32(**kw) -> ResNet:
    return ResNet(CIFAR[32], residual=False, **kw)


@register_model
def plain44(**kw) -> ResNet:
    return ResNet(CIFAR[44], residual=False, **kw)


@register_model
def plain56(**kw) -> ResNet:
    return ResNet(CIFAR[56], residual=False, **kw)


@register_model
def plain110(**kw) -> ResNet:
    return ResNet(CIFAR[110], residual=False, **kw)


# SE-ResNet (Hu et al. 2018), timm's seresnet50/101/152.
@register_model(timm="seresnet50")
def se_resnet50(**kw) -> ResNet:
    return ResNet(TABLE1[50], se_reduction=16, **kw)


@register_model(timm="seresnet101")
def se_resnet101(**kw) -> ResNet:
    return ResNet(TABLE1[101], se_reduction=16, **kw)


@register_model(timm="seresnet152")
def se_resnet152(**kw) -> ResNet:
    return ResNet(TABLE1[152], se_reduction=16, **kw)
