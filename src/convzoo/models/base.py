"""The shape every convzoo model shares: `stem`, `stages`, `head`.

A family's class builds those three parts and this base gives them one interface:
`forward_features`, `forward_head`, `reset_head`, and named parameter groups
(stem, stage1 ... stageN, head) that freezing and per-layer learning rates use.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn


@dataclass(frozen=True)
class Paper:
    """Where a network comes from: the citation, and the paper's table it is built from."""

    citation: str
    short: str = ""  # "He et al. 2015", for listings
    table: str = ""
    url: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return self.citation


class ModelOutput(NamedTuple):
    """What a network with auxiliary classifiers returns, in training and in eval mode alike.

    `aux_logits` holds one tensor per auxiliary classifier in training mode and is empty in
    eval mode, so a training loop adds their losses without asking which mode it is in.
    """

    logits: torch.Tensor
    aux_logits: tuple[torch.Tensor, ...] = ()


def split_output(out: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(logits, auxiliary logits) from a tensor or an object with `.logits`/`.aux_logits`."""
    if isinstance(out, torch.Tensor):
        return out, []
    aux = getattr(out, "aux_logits", None)
    if aux is None:
        aux = []
    elif isinstance(aux, torch.Tensor):
        aux = [aux]
    return out.logits, [a for a in aux if a is not None]


class ClassifierHead(nn.Module):
    """Everything after the features: `pre` (pooling, hidden layers) -> dropout -> `fc`.

    `pre` turns the feature map into a vector of `in_features`; `num_classes=0` leaves the
    classifier out, so the model returns that vector.
    """

    def __init__(
        self, pre: nn.Module, in_features: int, num_classes: int, dropout: float = 0.0,
        fc_factory: Callable[[int, int], nn.Module] = nn.Linear,
    ) -> None:
        super().__init__()
        self.pre = pre
        self.in_features = in_features
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc_factory = fc_factory
        self.fc: nn.Module = self._make_fc(num_classes)

    def _make_fc(self, num_classes: int) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        return self.fc_factory(self.in_features, num_classes)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pre(x)
        if pre_logits:
            return x
        return self.fc(self.drop(x))

    def reset(self, num_classes: int) -> None:
        fc = self._make_fc(num_classes)
        old = next(iter([*self.pre.parameters(), *self.fc.parameters(), *self.fc.buffers()]),
                   None)
        if old is not None:
            fc.to(device=old.device, dtype=old.dtype)
        self.fc = fc


def pool_flatten() -> nn.Module:
    """Global average pooling to a vector, the head of every network since NIN."""
    return nn.Sequential(OrderedDict(pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(1)))


class ConvNet(nn.Module):
    """Base class: subclasses set `stem`, `stages` (a ModuleList) and `head` in __init__."""

    stem: nn.Module
    stages: nn.ModuleList
    head: nn.Module
    default_input_size: tuple[int, int, int] = (3, 224, 224)
    paper: Paper = Paper("")
    num_classes: int
    # Foreign weights this model accepts ("torchvision", "timm", ...), mapped by `key_map`.
    weight_sources: tuple[str, ...] = ()
    # Set by `registry.describe` (names) and `weights.load_weights` (what weights bring);
    # these are the defaults of a model built by its class alone.
    torchvision_name: str | None = None
    timm_name: str | None = None
    class_names: list[str] | None = None
    preprocess = None  # a convzoo.data.preprocess.Preprocess, when weights bring one

    def key_map(self, source: str) -> dict[str, str | None]:
        """Prefix renames from a foreign state_dict's names to this model's."""
        raise KeyError(f"{type(self).__name__} has no key map for {source!r}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_head(self, num_classes: int) -> None:
        """Replace the last layer with a new one for `num_classes` (0: no classifier)."""
        self.head.reset(num_classes)
        self.num_classes = num_classes

    @property
    def num_features(self) -> int:
        """Width of the vector the classifier sees (`forward_head(..., pre_logits=True)`)."""
        return self.head.in_features

    def group_modules(self) -> OrderedDict[str, nn.Module]:
        """Named parameter groups from input to output: stem, stage1 ... stageN, head."""
        groups: OrderedDict[str, nn.Module] = OrderedDict(stem=self.stem)
        for i, stage in enumerate(self.stages, 1):
            groups[f"stage{i}"] = stage
        groups["head"] = self.head
        for name, module in self.extra_groups().items():
            groups[name] = module
        return groups

    def extra_groups(self) -> OrderedDict[str, nn.Module]:
        """Modules outside stem/stages/head (auxiliary classifiers); override to add them."""
        return OrderedDict()

    def parameter_groups(self) -> OrderedDict[str, list[nn.Parameter]]:
        return OrderedDict(
            (name, list(m.parameters())) for name, m in self.group_modules().items()
        )
