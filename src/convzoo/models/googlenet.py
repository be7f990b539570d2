"""GoogLeNet (Szegedy et al. 2014, "Going Deeper with Convolutions"), Table 1, and the variant
torchvision ships.

`googlenet`, as published:
- stem of Table 1: 7x7/2 convolution (64), 3x3/2 max-pool, LRN, 1x1 convolution (64),
  3x3 convolution (192), LRN, 3x3/2 max-pool; ReLU after every convolution, no batch norm;
- nine inception modules (`INCEPTIONS`, Table 1's filter columns), max-pooled 3x3/2 before 4a
  and 5a; each has a 1x1, a 1x1->3x3, a 1x1->5x5 and a 3x3 max-pool->1x1 branch;
- the pools use ceil mode (as the reference Caffe model does) so 112 -> 56 -> 28 -> 14 -> 7;
- LRN has the reference Caffe model's parameters (size 5, alpha 1e-4 in Caffe's per-element
  convention, beta 0.75, k 1), which the paper does not state;
- head: global average pooling (the paper's 7x7/1 average pool at 224x224), dropout 0.4,
  linear layer;
- two auxiliary classifiers on the outputs of 4a and 4d (section 5): 5x5/3 average pool,
  1x1 convolution with 128 filters, FC 1024, dropout 0.7, FC to the classes. They run in
  training mode only; the model returns `ModelOutput(logits, aux_logits)` in both modes (the
  tuple is empty in eval mode). The paper weighs their losses by 0.3. The 5x5/3 pool gives
  the 4x4 map the FC 1024 expects from the 14x14 maps of a 224x224 input (and from the
  12x12 to 14x14 maps of any input from 191 to 238 pixels a side); other inputs give other
  maps, so the pool is followed by an adaptive average pool to 4x4 (the 5x5 pooled map of a
  239-286 pixel input is averaged in overlapping 2x2 windows), and a map smaller than 5x5
  (inputs below 79 pixels) is pooled adaptively to 4x4 directly. Every input size the main
  path takes (31 pixels and up) therefore trains, auxiliary heads included;
- initialisation after the reference Caffe model: Xavier weights, convolution biases 0.2.

`googlenet_tv`, torchvision's `googlenet` (6,624,904 parameters without its auxiliary heads):
batch norm (eps 1e-3) after every convolution and no biases there, no LRN, 3x3 convolutions in
the "5x5" branch, a 2x2/2 max-pool before 5a, dropout 0.2; its auxiliary heads (off by
default, `aux_logits=True` adds them) pool adaptively to 4x4 and have batch norm too. It loads
torchvision's state_dict. torchvision's `transform_input` re-scales ImageNet-normalised input
to the [-1, 1] range Google's original weights expect; torchvision turns it on only with its
pretrained weights, so it is off here too (`transform_input=True` adds the same step).

Table 1's params and ops columns (`PAPER_FIGURES`) count weights without biases in units of
1024 and multiply-accumulates in millions: 1K = 1024 reproduces the column best (inception 3a
has 163,328 weights = 159.5 x 1024 = 163.3 x 1000, printed as 159K). `convzoo summary
googlenet --convention paper` prints the real figures beside the paper's. Where the two
disagree by more than rounding (`PAPER_DISCREPANCIES`), the paper is inconsistent with its
own filter columns:
- conv 7x7/2: 2.7K / 34M printed; 7*7*3*64 = 9,408 weights (9.2K), 118M MACs at 112x112;
- params of 4a, 4c, 4d, 4e, 5b are printed 0.7% to 7% below what their columns give (4c:
  463K printed, 497.5K from its filters, while its printed 100M ops agree with 497.5K);
- 5a is printed as 1072K / 54M, figures that agree with each other but fit a module with 928
  input channels; with the 832 channels 4e and the max-pool give it, it has 1018K / 51M.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserInputError
from ..layers import LRN, ConvNormAct
from ..layers.activations import ActSpec, make_act
from ..layers.init import on_meta
from ..registry import register_model
from .base import ClassifierHead, ConvNet, ModelOutput, Paper, pool_flatten


class Inception(NamedTuple):
    """One inception row of Table 1: the filters of each branch."""

    name: str
    n1x1: int
    n3x3_reduce: int
    n3x3: int
    n5x5_reduce: int
    n5x5: int
    pool_proj: int

    @property
    def out_channels(self) -> int:
        return self.n1x1 + self.n3x3 + self.n5x5 + self.pool_proj


# Table 1 of the paper (GoogLeNet incarnation of the Inception architecture).
INCEPTIONS: tuple[Inception, ...] = (
    Inception("3a", 64, 96, 128, 16, 32, 32),
    Inception("3b", 128, 128, 192, 32, 96, 64),
    Inception("4a", 192, 96, 208, 16, 48, 64),
    Inception("4b", 160, 112, 224, 24, 64, 64),
    Inception("4c", 128, 128, 256, 24, 64, 64),
    Inception("4d", 112, 144, 288, 32, 64, 64),
    Inception("4e", 256, 160, 320, 32, 128, 128),
    Inception("5a", 256, 160, 320, 32, 128, 128),
    Inception("5b", 384, 192, 384, 48, 128, 128),
)
STAGES: tuple[tuple[str, ...], ...] = (("3a", "3b"), ("4a", "4b", "4c", "4d", "4e"),
                                       ("5a", "5b"))
AUX_AFTER: tuple[str, ...] = ("4a", "4d")  # section 5: classifiers on 4a's and 4d's outputs


class PaperFigure(NamedTuple):
    """Table 1's last two columns as printed: weights in units of 1024, MACs in millions."""

    params_k: float
    ops_m: float


PAPER_FIGURES: dict[str, PaperFigure] = {
    "conv1": PaperFigure(2.7, 34), "conv2": PaperFigure(112, 360),
    "3a": PaperFigure(159, 128), "3b": PaperFigure(380, 304), "4a": PaperFigure(364, 73),
    "4b": PaperFigure(437, 88), "4c": PaperFigure(463, 100), "4d": PaperFigure(580, 119),
    "4e": PaperFigure(840, 170), "5a": PaperFigure(1072, 54), "5b": PaperFigure(1388, 71),
    "linear": PaperFigure(1000, 1),
}
# (row, column) pairs where the real module differs from the printed figure by more than
# rounding; the module docstring says why.
PAPER_DISCREPANCIES: frozenset[tuple[str, str]] = frozenset({
    ("conv1", "params_k"), ("conv1", "ops_m"), ("4a", "params_k"), ("4c", "params_k"),
    ("4d", "params_k"), ("4e", "params_k"), ("5a", "params_k"), ("5a", "ops_m"),
    ("5b", "params_k"),
})


class Variant(NamedTuple):
    """What separates the paper's network from torchvision's."""

    batch_norm: bool
    k5: int  # kernel of the "5x5" branch
    lrn: bool
    pool4: int  # kernel of the max-pool before 5a
    dropout: float
    aux_pool: str  # "paper": 5x5/3 average pool; "adaptive": adaptive 4x4
    torchvision_keys: bool  # its state_dict is torchvision's `googlenet`


PAPER_VARIANT = Variant(False, 5, True, 3, 0.4, "paper", False)
TORCHVISION_VARIANT = Variant(True, 3, False, 2, 0.2, "adaptive", True)

PAPER = Paper(
    short="Szegedy et al. 2014",
    citation="C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan, "
    "V. Vanhoucke, A. Rabinovich. Going Deeper with Convolutions. CVPR 2015 (arXiv:1409.4842)",
    table="Table 1 (GoogLeNet incarnation of the Inception architecture)",
    url="https://arxiv.org/abs/1409.4842",
)


class InceptionModule(nn.Module):
    """Four parallel branches concatenated along the channels."""

    def __init__(self, in_ch: int, row: Inception, conv: Callable[..., nn.Module], k5: int):
        super().__init__()
        self.row = row
        self.branch1 = conv(in_ch, row.n1x1, 1)
        self.branch2 = nn.Sequential(conv(in_ch, row.n3x3_reduce, 1),
                                     conv(row.n3x3_reduce, row.n3x3, 3))
        self.branch3 = nn.Sequential(conv(in_ch, row.n5x5_reduce, 1),
                                     conv(row.n5x5_reduce, row.n5x5, k5))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True),
                                     conv(in_ch, row.pool_proj, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class AuxPool(nn.Module):
    """The paper's 5x5/3 average pool, then adaptive to the 4x4 map the FC 1024 expects.

    At a 14x14 map (224x224 input) the 5x5/3 pool alone gives 4x4 and the adaptive step is
    the identity. The pool rounds its output size up, as the reference Caffe model's pools do,
    and the adaptive step reads the pooled map's real size, so the two can never disagree
    (they once did: a floor formula chose the branch and a 5x5 map reached the FC layer).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) >= 5:
            x = F.avg_pool2d(x, 5, 3, ceil_mode=True)
        if tuple(x.shape[-2:]) == (4, 4):
            return x
        return F.adaptive_avg_pool2d(x, 4)


class AuxHead(nn.Sequential):
    """An auxiliary classifier: pool to 4x4, 1x1 conv 128, FC 1024, dropout, FC."""

    def __init__(self, in_ch: int, num_classes: int, conv: Callable[..., nn.Module],
                 pool: nn.Module, act: ActSpec, dropout: float) -> None:
        super().__init__(OrderedDict(
            pool=pool, conv=conv(in_ch, 128, 1), flatten=nn.Flatten(1),
            fc1=nn.Linear(128 * 16, 1024), act=make_act(act), drop=nn.Dropout(dropout),
        ))
        self.fc2: nn.Module = nn.Linear(1024, num_classes) if num_classes > 0 else nn.Identity()

    def reset(self, num_classes: int) -> None:
        ref = self.fc1.weight
        self.fc2 = (nn.Linear(1024, num_classes, device=ref.device, dtype=ref.dtype)
                    if num_classes > 0 else nn.Identity())


class TorchvisionInputTransform(nn.Module):
    """torchvision's `transform_input`: ImageNet-normalised input to (x - 0.5) / 0.5.

    torchvision multiplies and adds Python floats, which reach the kernel as the float32
    nearest to the double-precision constant. The constants are therefore computed in Python
    (double) and rounded once; computing them from float32 tensors rounds the mean first and
    the shift came out up to 6e-8 off, 3.5e-6 in the logits.
    """

    def __init__(self) -> None:
        super().__init__()
        std, mean = (0.229, 0.224, 0.225), (0.485, 0.456, 0.406)
        scale = torch.tensor([s / 0.5 for s in std]).view(1, 3, 1, 1)
        shift = torch.tensor([(m - 0.5) / 0.5 for m in mean]).view(1, 3, 1, 1)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", shift, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class GoogLeNet(ConvNet):
    default_input_size = (3, 224, 224)
    paper = PAPER

    def __init__(
        self, variant: Variant, num_classes: int = 1000, in_channels: int = 3,
        act: ActSpec = "relu", dropout: float | None = None, aux_logits: bool = True,
        aux_dropout: float = 0.7, transform_input: bool = False,
    ) -> None:
        super().__init__()
        self.variant, self.num_classes = variant, num_classes
        if variant.batch_norm:
            conv = partial(ConvNormAct, norm=partial(nn.BatchNorm2d, eps=1e-3), act=act)
        else:
            conv = partial(ConvNormAct, norm=None, act=act, bias=True)
        if transform_input and in_channels != 3:
            raise UserInputError("transform_input re-scales the 3 ImageNet channels; "
                                 f"it does not fit in_channels={in_channels}")

        def lrn() -> LRN:
            return LRN(size=5, alpha=1e-4 / 5, beta=0.75, k=1.0)

        stem: OrderedDict[str, nn.Module] = OrderedDict()
        if transform_input:
            stem["transform"] = TorchvisionInputTransform()
        stem["conv1"] = conv(in_channels, 64, 7, 2, 3)
        stem["pool1"] = nn.MaxPool2d(3, 2, ceil_mode=True)
        if variant.lrn:
            stem["lrn1"] = lrn()
        stem["conv2_reduce"] = conv(64, 64, 1)
        stem["conv2"] = conv(64, 192, 3)
        if variant.lrn:
            stem["lrn2"] = lrn()
        stem["pool2"] = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.stem = nn.Sequential(stem)

        rows = {r.name: r for r in INCEPTIONS}
        ch, stages, widths = 192, [], {}
        for i, names in enumerate(STAGES):
            mods: OrderedDict[str, nn.Module] = OrderedDict()
            if i == 1:
                mods["pool3"] = nn.MaxPool2d(3, 2, ceil_mode=True)
            elif i == 2:
                mods["pool4"] = nn.MaxPool2d(variant.pool4, 2, ceil_mode=True)
            for name in names:
                mods[f"inception{name}"] = InceptionModule(ch, rows[name], conv, variant.k5)
                ch = rows[name].out_channels
                widths[name] = ch
            stages.append(nn.Sequential(mods))
        self.stages = nn.ModuleList(stages)
        drop = variant.dropout if dropout is None else dropout
        self.head = ClassifierHead(pool_flatten(), ch, num_classes, drop)

        self.aux: nn.ModuleDict | None = None
        self._aux_taps: dict[str, str] = {}
        if aux_logits:
            def pool() -> nn.Module:
                return AuxPool() if variant.aux_pool == "paper" else nn.AdaptiveAvgPool2d(4)

            self._aux_taps = {f"inception{n}": f"aux{i}" for i, n in enumerate(AUX_AFTER, 1)}
            self.aux = nn.ModuleDict({
                f"aux{i}": AuxHead(widths[n], num_classes, conv, pool(), act, aux_dropout)
                for i, n in enumerate(AUX_AFTER, 1)})
        self._init_weights()

    def _init_weights(self) -> None:
        if on_meta(self):  # shapes only (summary, list)
            return
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if self.variant.batch_norm:  # torchvision's init
                    nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                else:
                    nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0.2 if isinstance(m, nn.Conv2d) else 0.0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _run(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, tuple]:
        x = self.stem(x)
        aux = []
        for stage in self.stages:
            for name, module in stage.named_children():
                x = module(x)
                if with_aux and name in self._aux_taps:
                    aux.append(self.aux[self._aux_taps[name]](x))
        return x, tuple(aux)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, with_aux=False)[0]

    def forward(self, x: torch.Tensor) -> ModelOutput:  # type: ignore[override]
        feats, aux = self._run(x, with_aux=self.training and self.aux is not None)
        return ModelOutput(self.forward_head(feats), aux)

    def reset_head(self, num_classes: int) -> None:
        super().reset_head(num_classes)
        for head in (self.aux or {}).values():
            head.reset(num_classes)

    def extra_groups(self) -> OrderedDict[str, nn.Module]:
        return OrderedDict(aux=self.aux) if self.aux is not None else OrderedDict()

    @property
    def weight_sources(self) -> tuple[str, ...]:
        return ("torchvision",) if self.variant.torchvision_keys else ()

    @property
    def extra_head_prefixes(self) -> tuple[str, ...]:
        """The auxiliary classifiers' last layers: kept new when a file has another class count."""
        return tuple(f"aux.{name}.fc2." for name in (self.aux or {}))

    def key_map(self, source: str) -> dict[str, str | None]:
        """torchvision names the stem conv1, conv2 (1x1), conv3 (3x3) and the modules flat."""
        if source not in self.weight_sources:
            return super().key_map(source)
        m: dict[str, str | None] = {"conv1.": "stem.conv1.", "conv2.": "stem.conv2_reduce.",
                                    "conv3.": "stem.conv2.", "fc.": "head.fc."}
        for i, names in enumerate(STAGES):
            for n in names:
                m[f"inception{n}."] = f"stages.{i}.inception{n}."
        for i in range(1, len(AUX_AFTER) + 1):
            m[f"aux{i}."] = f"aux.aux{i}." if self.aux is not None else None
        return m

@register_model
def googlenet(**kw) -> GoogLeNet:
    return GoogLeNet(PAPER_VARIANT, **kw)


@register_model(torchvision="googlenet")
def googlenet_tv(aux_logits: bool = False, **kw) -> GoogLeNet:
    return GoogLeNet(TORCHVISION_VARIANT, aux_logits=aux_logits, **kw)
