"""Highway networks (Srivastava, Greff, Schmidhuber 2015, "Highway Networks" and "Training Very
Deep Networks") and plain networks of the same depth, for the degradation experiment.

A highway layer computes y = H(x) * T(x) + x * (1 - T(x)) (`convzoo.layers.Highway`): the
transform gate T decides, unit by unit, how much of the layer's output is the new H(x) and how
much is the input carried through. The plain counterpart of a highway layer is H alone.

`highway_fc` / `plain_fc` follow the paper's MNIST networks: a first, plain fully connected
layer from the flattened image to `width` units, then `depth` highway (or plain) layers, then
the softmax classifier. The paper made its nets thin, 50 units per highway layer and 71 per
plain layer, so that a layer of either kind has about 5,000 parameters (2 x (50*50 + 50) =
5,100 against 71*71 + 71 = 5,112); those are the default widths. It compared depths of 10, 20,
50 and 100 layers (the first layer included); `depth=9` (10 layers) is the default here.

`highway_conv` / `plain_conv` are convzoo's small convolutional pair for 32x32 images, in the
spirit of the paper's CIFAR-10 nets (3x3 convolutions for both H and T, 'same' padding, max-
pooling between resolutions): a plain 3x3 convolution, then three stages at 32x32, 16x16 and
8x8, each opened (after the first) by 2x2 max-pooling and a plain 3x3 convolution that widens
the map, then holding its share of the `depth` highway (or plain) layers; global average
pooling and the classifier close it. Plain layers are sqrt(2) times wider (45/91/181 against
32/64/128 channels) so that, as in the MNIST pair, a layer of either kind has about as many
parameters.

Choices:
- The transform gate's bias starts at -2 (`gate_bias`, any negative value can be passed): the
  paper suggests "a negative value (e.g. -1, -3 etc.)" so that a deep net starts out carrying
  its input, and tuned the value per network; -2 sits in that range.
- No batch norm, so that the pair isolates what the gates do; all weights (H, T, plain layers,
  classifier) start from Glorot's normalised initialisation and the biases at 0 (the gate's
  at `gate_bias`), so the highway and plain nets differ only in their layers' kind.
- Stages are groups of highway (or plain) layers: groups of at most ten for the fully connected
  nets, one per resolution for the convolutional ones.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from torch import nn

from ..layers import Highway, HighwayConv2d, HighwayLinear
from ..layers.activations import ActSpec, make_act
from ..layers.highway import DEFAULT_GATE_BIAS
from ..layers.init import on_meta
from ..registry import register_model
from .base import ClassifierHead, ConvNet, Paper, pool_flatten


class FcSpec(NamedTuple):
    """A fully connected net: the first plain layer, then `depth` layers of `width` units."""

    width: int
    depth: int
    highway: bool


class ConvSpec(NamedTuple):
    """A convolutional net: one stage per width, `depth` layers shared among the stages."""

    widths: tuple[int, ...]
    depth: int
    highway: bool


# Section 3.1 of "Training Very Deep Networks": 50 highway / 71 plain units per layer.
FC: dict[str, FcSpec] = {
    "highway": FcSpec(50, 9, True),
    "plain": FcSpec(71, 9, False),
}
CONV: dict[str, ConvSpec] = {
    "highway": ConvSpec((32, 64, 128), 9, True),
    "plain": ConvSpec((45, 91, 181), 9, False),
}
FC_GROUP = 10  # layers per stage in the fully connected nets

PAPER = Paper(
    short="Srivastava et al. 2015",
    citation="R. K. Srivastava, K. Greff, J. Schmidhuber. Highway Networks (arXiv:1505.00387) "
    "and Training Very Deep Networks, NIPS 2015 (arXiv:1507.06228)",
    table="Section 2 (highway layer, negative gate bias), section 3.1 (MNIST nets: 50 highway "
    "/ 71 plain units per layer, 10 to 100 layers)",
    url="https://arxiv.org/abs/1507.06228",
)


def _split(depth: int, parts: int) -> list[int]:
    return [depth // parts + (1 if i < depth % parts else 0) for i in range(parts)]


class _GatedNet(ConvNet):
    paper = PAPER

    def _init_weights(self) -> None:
        if on_meta(self):  # shapes only (summary, list)
            return
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, Highway):
                nn.init.constant_(m.t.bias, m.gate_bias)


class HighwayFC(_GatedNet):
    """Flatten -> plain fc to `width` -> `depth` highway or plain fc layers -> classifier."""

    def __init__(
        self, spec: FcSpec, num_classes: int = 10, in_channels: int = 1, act: ActSpec = "relu",
        dropout: float = 0.0, depth: int | None = None, width: int | None = None,
        image_size: int = 28, gate_bias: float = DEFAULT_GATE_BIAS,
    ) -> None:
        super().__init__()
        depth = spec.depth if depth is None else depth
        width = spec.width if width is None else width
        self.spec = spec._replace(depth=depth, width=width)
        self.num_classes = num_classes
        self.default_input_size = (in_channels, image_size, image_size)
        self.stem = nn.Sequential(OrderedDict(
            flatten=nn.Flatten(1), fc=nn.Linear(in_channels * image_size ** 2, width),
            act=make_act(act)))

        def layer() -> nn.Module:
            if spec.highway:
                return HighwayLinear(width, act, gate_bias)
            return nn.Sequential(OrderedDict(fc=nn.Linear(width, width), act=make_act(act)))

        sizes = [min(FC_GROUP, depth - i) for i in range(0, depth, FC_GROUP)]
        self.stages = nn.ModuleList(nn.Sequential(*(layer() for _ in range(n))) for n in sizes)
        self.head = ClassifierHead(nn.Identity(), width, num_classes, dropout)
        self._init_weights()


class HighwayConvNet(_GatedNet):
    """Plain 3x3 conv -> stages of [pool, widening conv,] highway or plain 3x3 convs -> head."""

    def __init__(
        self, spec: ConvSpec, num_classes: int = 10, in_channels: int = 3, act: ActSpec = "relu",
        dropout: float = 0.0, depth: int | None = None, gate_bias: float = DEFAULT_GATE_BIAS,
    ) -> None:
        super().__init__()
        depth = spec.depth if depth is None else depth
        self.spec = spec._replace(depth=depth)
        self.num_classes = num_classes
        self.default_input_size = (in_channels, 32, 32)

        def conv(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(OrderedDict(conv=nn.Conv2d(cin, cout, 3, padding=1),
                                             act=make_act(act)))

        ch = spec.widths[0]
        self.stem = conv(in_channels, ch)
        stages = []
        for i, (width, n) in enumerate(zip(spec.widths, _split(depth, len(spec.widths)))):
            parts: OrderedDict[str, nn.Module] = OrderedDict()
            if i > 0:
                parts["pool"] = nn.MaxPool2d(2)
                parts["widen"] = conv(ch, width)
                ch = width
            parts["layers"] = nn.Sequential(*(
                HighwayConv2d(ch, 3, act, gate_bias) if spec.highway else conv(ch, ch)
                for _ in range(n)))
            stages.append(nn.Sequential(parts))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(pool_flatten(), ch, num_classes, dropout)
        self._init_weights()


@register_model
def highway_fc(**kw) -> HighwayFC:
    return HighwayFC(FC["highway"], **kw)


@register_model
def plain_fc(**kw) -> HighwayFC:
    return HighwayFC(FC["plain"], **kw)


@register_model
def highway_conv(**kw) -> HighwayConvNet:
    return HighwayConvNet(CONV["highway"], **kw)


@register_model
def plain_conv(**kw) -> HighwayConvNet:
    return HighwayConvNet(CONV["plain"], **kw)
