"""Models side by side: size, operations, memory, depth, and their published ImageNet accuracy.

Counts come from the real modules on the meta device (`profile_with_fields`: the profile and
the depth in one pass); accuracies come from `published.toml`, one cited row per model.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..errors import UserInputError

if TYPE_CHECKING:
    from .profile import Profile
    from .receptive import RFTrace


@dataclass(frozen=True)
class Published:
    top1: float | None
    top5: float | None
    source: str  # "paper", "torchvision" or "release"
    citation: str
    evaluation: str


@dataclass
class CompareRow:
    model: str
    params: int  # those that run at inference, as MACs and depth count
    macs: int  # at the default input
    activations: int  # output elements of the layers, batch 1
    activation_mb: float  # the same at float32, in MB (10^6 bytes)
    depth: int  # Conv2d and Linear modules on the longest path
    input: str
    top1: float | None
    top5: float | None
    source: str
    citation: str
    evaluation: str
    # parameters of modules only training runs (GoogLeNet's auxiliary classifiers), not in
    # `params`; the model holds params + train_only_params
    train_only_params: int = 0

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = ("model", "params", "macs", "activations", "depth", "top1", "top5", "source")


@cache
def published() -> dict[str, Published]:
    """The published accuracies, by registered model name."""
    text = resources.files("convzoo.analysis").joinpath("published.toml").read_text("utf-8")
    data = tomllib.loads(text)
    return {name: Published(row.get("top1"), row.get("top5"), row["source"], row["citation"],
                            row.get("evaluation", "")) for name, row in data.items()}


def compare_models(names: list[str]) -> list[CompareRow]:
    """One row per model, in the order given."""
    from .receptive import profile_with_fields

    pub = published()
    return [compare_row(name, *profile_with_fields(name), pub) for name in names]


def compare_row(name: str, prof: Profile, trace: RFTrace,
                pub: dict[str, Published] | None = None) -> CompareRow:
    """The row of `name` from its profile and receptive trace (`profile_with_fields`), for a
    caller that keeps them for more (the atlas draws its layer table from the same pass)."""
    p = (published() if pub is None else pub).get(name)
    # rows the eval-mode forward did not reach hold the training-only heads' parameters
    train_only = sum(r.params for r in prof.layers if r.extra.get("ran") is False)
    return CompareRow(
        model=name, params=prof.total_params - train_only, macs=prof.total_macs,
        activations=prof.activation_elements,
        activation_mb=round(prof.activation_elements * 4 / 1e6, 2), depth=trace.depth,
        input="x".join(map(str, prof.input_size)),
        top1=p.top1 if p else None, top5=p.top5 if p else None,
        source=p.source if p else "", citation=p.citation if p else "",
        evaluation=p.evaluation if p else "", train_only_params=train_only)


def train_only_note(rows: list[CompareRow]) -> str | None:
    """The footnote for models that carry training-only heads, or None when none does."""
    parts = [f"{r.model} {r.params + r.train_only_params:,} with them" for r in rows
             if r.train_only_params]
    if not parts:
        return None
    return ("params, like MACs and depth, count what runs at inference; training-only heads "
            "(auxiliary classifiers) are left out: " + "; ".join(parts))


def sort_rows(rows: list[CompareRow], column: str, reverse: bool = False) -> list[CompareRow]:
    """Sorted by a column; rows without a value (no published accuracy) go last either way."""
    if column not in COLUMNS:
        raise UserInputError(f"cannot sort by {column!r}: choose one of {', '.join(COLUMNS)}")
    have = [r for r in rows if getattr(r, column) not in (None, "")]
    missing = [r for r in rows if getattr(r, column) in (None, "")]
    return sorted(have, key=lambda r: getattr(r, column), reverse=reverse) + missing
