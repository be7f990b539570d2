"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998, "Gradient-Based Learning Applied to Document
Recognition"), section II.B, and the modern variant every course trains today.

`lenet5`, as published, 60,000 trainable parameters:
- input 32x32x1 (28x28 digits padded by 2, as in the paper);
- C1: 6 5x5 filters; S2 and S4: trainable subsampling, where each map sums its 2x2
  neighbourhood, multiplies by one coefficient and adds one bias (12 and 32 parameters);
- C3: 16 maps wired to S2's maps by the sparse connection table (Table I): 1,516 parameters;
- C5: 120 5x5 filters over all of S4; F6: 84 units;
- every layer up to F6 squashes with f(a) = 1.7159 tanh(2a/3) (appendix A);
- the output is a layer of Euclidean RBF units, y_i = sum_j (x_j - w_ij)^2, whose centres are
  fixed, not trained. The paper drew them as 7x12 bitmaps of the characters; here they are
  fixed +-1 codes from a seeded generator, playing the same role. The logits are -y, so
  cross-entropy on them is the paper's maximum-a-posteriori criterion without its constant j.

`lenet5_modern`: ReLU, 2x2 max-pooling, a full C3 and a linear output: 61,706 parameters.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.activations import ActSpec, make_act
from ..registry import register_model
from .base import ClassifierHead, ConvNet, Paper

# Table I: which of S2's six maps feed each of C3's sixteen maps.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


class LeNetLayout(NamedTuple):
    c1: int = 6
    c3: int = 16
    c5: int = 120
    f6: int = 84
    kernel: int = 5


LAYOUT = LeNetLayout()  # section II.B

# Section II.B: trainable parameters and connections of each layer, as the paper states them.
PAPER_LAYERS: tuple[tuple[str, int, int], ...] = (
    ("C1", 156, 122_304), ("S2", 12, 5_880), ("C3", 1_516, 151_600), ("S4", 32, 2_000),
    ("C5", 48_120, 48_120), ("F6", 10_164, 10_164),
)

PAPER = Paper(
    short="LeCun et al. 1998",
    citation="Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-Based Learning Applied to "
    "Document Recognition. Proc. IEEE 86(11), 1998",
    table="Section II.B (LeNet-5), Table I (C3 connections)",
    url="http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf",
)


class Subsampling(nn.Module):
    """S2/S4: sum of each 2x2 block, times one trainable coefficient per map, plus a bias.

    Computed as a stride-2 depthwise convolution whose four taps share the map's coefficient,
    so the operation counter sees the paper's four multiply-adds per output.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.weight.numel()
        kernel = self.weight.view(c, 1, 1, 1).expand(c, 1, 2, 2)
        return F.conv2d(x, kernel, self.bias, stride=2, groups=c)


class SparseConv(nn.Module):
    """C3: each output map sees only the input maps its row of Table I names.

    Maps with the same number of inputs are computed together as one grouped convolution over
    the gathered input maps; the table lists them in that order (6 of 3, 9 of 4, 1 of 6).
    """

    def __init__(self, table: tuple[tuple[int, ...], ...], kernel: int) -> None:
        super().__init__()
        self.table = table
        sizes = [len(t) for t in table]
        self.runs: list[tuple[int, int]] = []  # (inputs per map, maps)
        for s in sizes:
            if self.runs and self.runs[-1][0] == s:
                self.runs[-1] = (s, self.runs[-1][1] + 1)
            else:
                self.runs.append((s, 1))
        self.register_buffer("index", torch.tensor([i for t in table for i in t]),
                             persistent=False)
        self.convs = nn.ModuleList(nn.Conv2d(s * n, n, kernel, groups=n) for s, n in self.runs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # each run gathers its own input maps: slicing one gathered tensor instead makes the
        # backward zero a 60-map gradient per run (the CPU step 1.11x slower, measured by
        # benchmarks/cpu_kernels.py)
        outs, start = [], 0
        for (s, n), conv in zip(self.runs, self.convs):
            outs.append(conv(x.index_select(1, self.index[start:start + s * n])))
            start += s * n
        return torch.cat(outs, 1)


class RBFOutput(nn.Module):
    """Euclidean RBF units with fixed +-1 centres; returns -distance as logits."""

    def __init__(self, in_features: int, num_classes: int, seed: int = 5) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        # drawn on the CPU, where the seeded generator lives, then moved to the default device
        # (a random draw on the meta device would import torch._dynamo)
        codes = torch.randint(0, 2, (num_classes, in_features), generator=g, device="cpu")
        codes = (codes * 2.0 - 1.0).to(torch.get_default_device())
        self.register_buffer("centres", codes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        diff = x.unsqueeze(1) - self.centres
        return -(diff * diff).sum(-1)


class LeNet5(ConvNet):
    default_input_size = (1, 32, 32)
    paper = PAPER

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, act: ActSpec = "scaled_tanh",
        paper: bool = True, layout: LeNetLayout = LAYOUT,
    ) -> None:
        super().__init__()
        self.num_classes, self.faithful = num_classes, paper
        L = layout
        pool = Subsampling if paper else (lambda c: nn.MaxPool2d(2))
        self.stem = nn.Sequential(OrderedDict(
            c1=nn.Conv2d(in_channels, L.c1, L.kernel), act1=make_act(act),
            s2=pool(L.c1), act2=make_act(act) if paper else nn.Identity(),
        ))
        c3 = SparseConv(C3_TABLE, L.kernel) if paper else nn.Conv2d(L.c1, L.c3, L.kernel)
        self.stages = nn.ModuleList([
            nn.Sequential(OrderedDict(
                c3=c3, act3=make_act(act),
                s4=pool(L.c3), act4=make_act(act) if paper else nn.Identity(),
            )),
            nn.Sequential(OrderedDict(c5=nn.Conv2d(L.c3, L.c5, L.kernel), act5=make_act(act))),
        ])
        pre = nn.Sequential(OrderedDict(flatten=nn.Flatten(1), f6=nn.Linear(L.c5, L.f6),
                                        act6=make_act(act)))
        self.head = ClassifierHead(pre, L.f6, num_classes,
                                   fc_factory=RBFOutput if paper else nn.Linear)


@register_model
def lenet5(**kw) -> LeNet5:
    return LeNet5(paper=True, **kw)


@register_model
def lenet5_modern(act: ActSpec = "relu", **kw) -> LeNet5:
    return LeNet5(paper=False, act=act, **kw)
