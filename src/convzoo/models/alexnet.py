"""AlexNet (Krizhevsky, Sutskever, Hinton 2012, "ImageNet Classification with Deep
Convolutional Neural Networks"), figure 2 and section 3, and torchvision's variant.

`alexnet`, as published (60,965,224 parameters):
- input 227x227 (the paper's text says 224, but only 227 gives its 55x55 CONV1 maps);
- the two GPU towers are grouped convolutions (groups=2) where the paper keeps them apart:
  conv2, conv4 and conv5; conv3 and the fully connected layers see both towers;
- LRN after conv1 and conv2 with k=2, n=5, alpha=1e-4, beta=0.75 (section 3.3), overlapping
  3x3/2 max-pooling after conv1, conv2 and conv5 (section 3.4), dropout 0.5 on the outputs
  of the first two fully connected layers (section 4.2);
- initialisation of section 5: weights N(0, 0.01), biases 1 in conv2, conv4, conv5 and the
  hidden fully connected layers, 0 elsewhere.

`alexnet_owt`, "one weird trick" (Krizhevsky 2014) as torchvision ships it: one tower of
64-192-384-256-256 filters, no LRN, 224x224 input (conv1 padded by 2), an adaptive 6x6 average
pool and dropout before each hidden fully connected layer. It loads torchvision's `alexnet`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from torch import nn

from ..layers import LRN
from ..layers.activations import ActSpec, make_act
from ..layers.init import on_meta
from ..registry import register_model
from .base import ClassifierHead, ConvNet, Paper


class ConvLayer(NamedTuple):
    channels: int
    kernel: int
    stride: int = 1
    pad: int = 0
    groups: int = 1
    lrn: bool = False
    pool: bool = False
    bias_init: float = 0.0


class Layout(NamedTuple):
    convs: tuple[ConvLayer, ...]
    hidden: int
    input_size: int
    dropout_first: bool  # torchvision drops before each hidden FC, the paper after


# Figure 2 / section 3 of the paper.
PAPER_LAYOUT = Layout((
    ConvLayer(96, 11, 4, 0, 1, lrn=True, pool=True),
    ConvLayer(256, 5, 1, 2, 2, lrn=True, pool=True, bias_init=1.0),
    ConvLayer(384, 3, 1, 1, 1),
    ConvLayer(384, 3, 1, 1, 2, bias_init=1.0),
    ConvLayer(256, 3, 1, 1, 2, pool=True, bias_init=1.0),
), hidden=4096, input_size=227, dropout_first=False)

# torchvision's `alexnet` (the one-tower variant of Krizhevsky 2014).
OWT_LAYOUT = Layout((
    ConvLayer(64, 11, 4, 2, pool=True),
    ConvLayer(192, 5, 1, 2, pool=True),
    ConvLayer(384, 3, 1, 1),
    ConvLayer(256, 3, 1, 1),
    ConvLayer(256, 3, 1, 1, pool=True),
), hidden=4096, input_size=224, dropout_first=True)

PAPER = Paper(
    short="Krizhevsky et al. 2012",
    citation="A. Krizhevsky, I. Sutskever, G. E. Hinton. ImageNet Classification with Deep "
    "Convolutional Neural Networks. NIPS 2012",
    table="Figure 2 and section 3 (architecture)",
    url="https://papers.nips.cc/paper/4824",
)


class AlexNet(ConvNet):
    paper = PAPER

    def __init__(
        self, layout: Layout = PAPER_LAYOUT, num_classes: int = 1000, in_channels: int = 3,
        act: ActSpec = "relu", dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.layout, self.num_classes = layout, num_classes
        self.default_input_size = (in_channels, layout.input_size, layout.input_size)
        blocks, ch = [], in_channels
        for spec in layout.convs:
            layers: OrderedDict[str, nn.Module] = OrderedDict(
                conv=nn.Conv2d(ch, spec.channels, spec.kernel, spec.stride, spec.pad,
                               groups=spec.groups),
                act=make_act(act),
            )
            if spec.lrn:
                layers["lrn"] = LRN(size=5, alpha=1e-4, beta=0.75, k=2.0)
            if spec.pool:
                layers["pool"] = nn.MaxPool2d(3, 2)
            blocks.append(nn.Sequential(layers))
            ch = spec.channels
        self.stem, self.stages = blocks[0], nn.ModuleList(blocks[1:])
        h = layout.hidden
        if layout.dropout_first:
            pre = OrderedDict(pool=nn.AdaptiveAvgPool2d(6), flatten=nn.Flatten(1),
                              drop6=nn.Dropout(dropout), fc6=nn.Linear(ch * 36, h),
                              act6=make_act(act), drop7=nn.Dropout(dropout),
                              fc7=nn.Linear(h, h), act7=make_act(act))
            self.head = ClassifierHead(nn.Sequential(pre), h, num_classes)
        else:
            pre = OrderedDict(flatten=nn.Flatten(1), fc6=nn.Linear(ch * 36, h),
                              act6=make_act(act), drop6=nn.Dropout(dropout),
                              fc7=nn.Linear(h, h), act7=make_act(act))
            self.head = ClassifierHead(nn.Sequential(pre), h, num_classes, dropout)
            self._init_paper()

    def _init_paper(self) -> None:
        if on_meta(self):  # shapes only (summary, list)
            return
        convs = [b.conv for b in [self.stem, *self.stages]]
        for conv, spec in zip(convs, self.layout.convs):
            nn.init.normal_(conv.weight, 0, 0.01)
            nn.init.constant_(conv.bias, spec.bias_init)
        for name, m in self.head.named_modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0.0 if name == "fc" else 1.0)

    @property
    def weight_sources(self) -> tuple[str, ...]:
        return ("torchvision",) if self.layout.dropout_first else ()

    def key_map(self, source: str) -> dict[str, str | None]:
        if source != "torchvision":
            return super().key_map(source)
        convs = {0: "stem", 3: "stages.0", 6: "stages.1", 8: "stages.2", 10: "stages.3"}
        m: dict[str, str | None] = {f"features.{i}.": f"{p}.conv." for i, p in convs.items()}
        m.update({"classifier.1.": "head.pre.fc6.", "classifier.4.": "head.pre.fc7.",
                  "classifier.6.": "head.fc."})
        return m


@register_model
def alexnet(**kw) -> AlexNet:
    return AlexNet(PAPER_LAYOUT, **kw)


@register_model(torchvision="alexnet")
def alexnet_owt(**kw) -> AlexNet:
    return AlexNet(OWT_LAYOUT, **kw)
