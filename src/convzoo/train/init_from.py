"""Start a model from another trained one: copy every tensor whose name and shape match.

VGG's rule (Simonyan & Zisserman, section 3.1): the deeper configurations B-E started from a
trained A: "we initialised the first four convolutional layers and the last three fully-
connected layers with the layers of net A (the intermediate layers were initialised
randomly)". A's first four conv layers are conv1_1, conv2_1, conv3_1 and conv3_2, which keep
their names and shapes in every deeper column, so the rule is name-and-shape matching limited
to those layers and the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import UserInputError

RULES = ("auto", "match", "vgg")


@dataclass
class InitReport:
    source: str
    rule: str
    copied: list[str] = field(default_factory=list)
    not_copied: list[str] = field(default_factory=list)  # model tensors left as initialised
    unused: list[str] = field(default_factory=list)  # source tensors with no place

    def __str__(self) -> str:
        layers = sorted({k.rsplit(".", 1)[0] for k in self.copied})
        shown = ", ".join(layers[:12]) + (f", ... ({len(layers)} layers)" if len(layers) > 12
                                          else "")
        return (f"init from {self.source} ({self.rule} rule): copied {len(self.copied)} tensors "
                f"[{shown}]; {len(self.not_copied)} model tensors kept their initialisation; "
                f"{len(self.unused)} source tensors unused")


def _is_vgg(model: nn.Module) -> bool:
    return type(model).__module__.endswith("models.vgg")


def _read_source(source: str) -> tuple[dict[str, torch.Tensor], str | None]:
    """Tensors and (when a convzoo checkpoint) the model name they belong to."""
    from ..runs.checkpoint import META, load_checkpoint
    from ..weights import read_state_dict

    p = Path(source)
    if p.is_dir() or p.name == META or (p.parent / META).is_file():
        ckpt = load_checkpoint(p)
        return dict(ckpt.model_state), ckpt.meta.get("model")
    return read_state_dict(p), None


def vgg_paper_keys(src: dict[str, torch.Tensor]) -> set[str]:
    """Names of the source's first four conv layers' tensors and of its classifier."""
    conv_layers: list[str] = []
    for k, v in src.items():
        layer = k.rsplit(".", 1)[0]
        if v.ndim == 4 and k.endswith("weight") and layer not in conv_layers:
            conv_layers.append(layer)
    keep = conv_layers[:4]
    return {k for k in src if any(k.startswith(p + ".") for p in keep)
            or k.startswith(("head.pre.fc6.", "head.pre.fc7.", "head.fc."))}


def init_from(model: nn.Module, source: str, rule: str = "auto") -> InitReport:
    if rule not in RULES:
        raise UserInputError(f"unknown init rule {rule!r}; choose from {', '.join(RULES)}")
    src, src_model = _read_source(source)
    if rule == "auto":
        rule = "vgg" if _is_vgg(model) and (src_model or "").startswith("vgg11") else "match"
    own = model.state_dict()
    allowed = vgg_paper_keys(src) if rule == "vgg" else set(src)
    report = InitReport(source, rule)
    update = {}
    for k, v in src.items():
        if k in allowed and k in own and own[k].shape == v.shape:
            update[k] = v
        else:
            report.unused.append(k)
    if not update:
        raise UserInputError(f"nothing in {source} matches the model by name and shape")
    model.load_state_dict(update, strict=False)
    report.copied = sorted(update)
    report.not_copied = [k for k in own if k not in update]
    return report
