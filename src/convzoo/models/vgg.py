"""VGG (Simonyan and Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale Image
Recognition"), Table 1's columns A, A-LRN, B, C, D and E.

Choices:
- The columns are data (`COLUMNS`); one class builds any of them, with or without batch norm.
- Five blocks of convolutions, each closed by 2x2/2 max-pooling, are the five stages; VGG has
  no separate stem, so the `stem` group is empty.
- As in torchvision, an adaptive 7x7 average pool sits before the classifier; at 224x224 it
  passes the 7x7 map through unchanged, and it lets the net take other input sizes.
- Column C's 1x1 convolutions have padding 0; A-LRN's LRN uses AlexNet's parameters.
- The names without `_c`/`_lrn` load torchvision's `vggNN` and `vggNN_bn` state_dicts.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from torch import nn

from ..layers import LRN, ConvNormAct
from ..layers.activations import ActSpec, make_act
from ..layers.init import he_init, linear_normal
from ..registry import register_model
from .base import ClassifierHead, ConvNet, Paper


class Conv(NamedTuple):
    kernel: int
    channels: int


class Lrn(NamedTuple):
    pass


Layer = Conv | Lrn
C3_64, C3_128, C3_256, C3_512 = Conv(3, 64), Conv(3, 128), Conv(3, 256), Conv(3, 512)
C1_256, C1_512 = Conv(1, 256), Conv(1, 512)


class Column(NamedTuple):
    """One column of Table 1: five blocks of layers, each block followed by max-pooling."""

    label: str
    blocks: tuple[tuple[Layer, ...], ...]


# Table 1 of the paper (ConvNet configurations), block by block.
COLUMNS: dict[str, Column] = {
    "A": Column("A", ((C3_64,), (C3_128,), (C3_256,) * 2, (C3_512,) * 2, (C3_512,) * 2)),
    "A-LRN": Column("A-LRN", ((C3_64, Lrn()), (C3_128,), (C3_256,) * 2, (C3_512,) * 2,
                              (C3_512,) * 2)),
    "B": Column("B", ((C3_64,) * 2, (C3_128,) * 2, (C3_256,) * 2, (C3_512,) * 2, (C3_512,) * 2)),
    "C": Column("C", ((C3_64,) * 2, (C3_128,) * 2, (C3_256, C3_256, C1_256),
                      (C3_512, C3_512, C1_512), (C3_512, C3_512, C1_512))),
    "D": Column("D", ((C3_64,) * 2, (C3_128,) * 2, (C3_256,) * 3, (C3_512,) * 3, (C3_512,) * 3)),
    "E": Column("E", ((C3_64,) * 2, (C3_128,) * 2, (C3_256,) * 4, (C3_512,) * 4, (C3_512,) * 4)),
}

PAPER = Paper(
    short="Simonyan & Zisserman 2014",
    citation="K. Simonyan, A. Zisserman. Very Deep Convolutional Networks for Large-Scale Image "
    "Recognition. ICLR 2015 (arXiv:1409.1556)",
    table="Table 1 (ConvNet configurations), Table 2 (number of parameters)",
    url="https://arxiv.org/abs/1409.1556",
    notes=(
        "the course's VGG-16 memory slide (its layer-by-layer walk-through) totals "
        "'memory 24M * 4 bytes ~= 93MB', but its "
        "own rows (INPUT to the last FC, the same rows as above) add up to about 15.2M values, "
        "61 MB at fp32; convzoo prints what the rows add up to",
    ),
)


class VGG(ConvNet):
    default_input_size = (3, 224, 224)
    paper = PAPER

    def __init__(
        self, column: Column, num_classes: int = 1000, in_channels: int = 3,
        batch_norm: bool = False, act: ActSpec = "relu", dropout: float = 0.5,
        hidden: int = 4096,
    ) -> None:
        super().__init__()
        self.column, self.batch_norm, self.num_classes = column, batch_norm, num_classes
        self.stem = nn.Identity()
        stages, ch = [], in_channels
        for block in column.blocks:
            layers: list[nn.Module] = []
            for layer in block:
                if isinstance(layer, Lrn):
                    layers.append(LRN())
                else:
                    layers.append(ConvNormAct(ch, layer.channels, layer.kernel,
                                              norm="bn" if batch_norm else None, act=act,
                                              bias=True))
                    ch = layer.channels
            layers.append(nn.MaxPool2d(2, 2))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        pre = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveAvgPool2d(7), flatten=nn.Flatten(1),
            fc6=nn.Linear(ch * 49, hidden), act6=make_act(act), drop6=nn.Dropout(dropout),
            fc7=nn.Linear(hidden, hidden), act7=make_act(act),
        ))
        self.head = ClassifierHead(pre, hidden, num_classes, dropout)
        # The paper initialised deep columns from a trained A; from scratch, He init (as
        # torchvision does) lets every column train.
        he_init(self, linear_normal(0.01))

    @property
    def weight_sources(self) -> tuple[str, ...]:
        return ("torchvision",) if Lrn() not in sum(self.column.blocks, ()) else ()

    def key_map(self, source: str) -> dict[str, str | None]:
        """torchvision numbers `features` as one Sequential: conv, [bn], relu, ..., pool."""
        if source != "torchvision":
            return super().key_map(source)
        m: dict[str, str | None] = {}
        i = 0
        for b, block in enumerate(self.column.blocks):
            for j, _ in enumerate(block):
                m[f"features.{i}."] = f"stages.{b}.{j}.conv."
                i += 1
                if self.batch_norm:
                    m[f"features.{i}."] = f"stages.{b}.{j}.bn."
                    i += 1
                i += 1  # ReLU
            i += 1  # max-pool
        m.update({"classifier.0.": "head.pre.fc6.", "classifier.3.": "head.pre.fc7.",
                  "classifier.6.": "head.fc."})
        return m


def _vgg(col: str, **kwargs) -> VGG:
    return VGG(COLUMNS[col], **kwargs)


@register_model(torchvision="vgg11")
def vgg11(**kw) -> VGG:
    return _vgg("A", **kw)


@register_model
def vgg11_lrn(**kw) -> VGG:
    return _vgg("A-LRN", **kw)


@register_model(torchvision="vgg13")
def vgg13(**kw) -> VGG:
    return _vgg("B", **kw)


@register_model
def vgg16_c(**kw) -> VGG:
    return _vgg("C", **kw)


@register_model(torchvision="vgg16")
def vgg16(**kw) -> VGG:
    return _vgg("D", **kw)


@register_model(torchvision="vgg19")
def vgg19(**kw) -> VGG:
    return _vgg("E", **kw)


@register_model(torchvision="vgg11_bn")
def vgg11_bn(**kw) -> VGG:
    return _vgg("A", batch_norm=True, **kw)


@register_model(torchvision="vgg13_bn")
def vgg13_bn(**kw) -> VGG:
    return _vgg("B", batch_norm=True, **kw)


@register_model(torchvision="vgg16_bn")
def vgg16_bn(**kw) -> VGG:
    return _vgg("D", batch_norm=True, **kw)


@register_model(torchvision="vgg19_bn")
def vgg19_bn(**kw) -> VGG:
    return _vgg("E", batch_norm=True, **kw)
