"""Holding out part of a training split for validation, the same way for the same seed.

`validation_split` is what a run uses to choose its `best` checkpoint: the data set's own
validation split where it has one, else a stratified, seeded fraction of the training split.
The test split is never looked at for that; it is scored once, at the end, for the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .dataset import ArraySplit, FolderSplit, stratified_split

# Offsets the hold-out's generator from the run's seed, so the split does not share its
# random stream with the weights' initialisation.
SEED_OFFSET = 7919


def hold_out(split: ArraySplit | FolderSplit, fraction: float,
             seed: int) -> tuple[ArraySplit | FolderSplit, ArraySplit | FolderSplit]:
    """(train, validation) parts of a split: `fraction` of it (at least one image) is held
    out at random; both parts keep the split's order."""
    g = torch.Generator().manual_seed(seed + SEED_OFFSET)
    if isinstance(split, ArraySplit):
        n = split.labels.shape[0]
        perm = torch.randperm(n, generator=g)
        nv = max(1, round(n * fraction))
        v, t = perm[:nv].sort().values, perm[nv:].sort().values
        return (ArraySplit(split.images[t].contiguous(), split.labels[t]),
                ArraySplit(split.images[v].contiguous(), split.labels[v]))
    if isinstance(split, FolderSplit):
        n = len(split.samples)
        perm = torch.randperm(n, generator=g).tolist()
        nv = max(1, round(n * fraction))
        vs = set(perm[:nv])
        return (FolderSplit([s for i, s in enumerate(split.samples) if i not in vs]),
                FolderSplit([s for i, s in enumerate(split.samples) if i in vs]))
    raise TypeError(f"cannot split {type(split).__name__}")


def _labels(split: ArraySplit | FolderSplit) -> torch.Tensor:
    if isinstance(split, ArraySplit):
        return split.labels
    return torch.tensor([label for _, label in split.samples], dtype=torch.int64)


def _take(split: ArraySplit | FolderSplit, idx: torch.Tensor) -> ArraySplit | FolderSplit:
    if isinstance(split, ArraySplit):
        return ArraySplit(split.images[idx].contiguous(), split.labels[idx])
    return FolderSplit([split.samples[i] for i in idx.tolist()])


@dataclass
class Validation:
    """The images a run trains on, the ones `best` is chosen on (None: no best), and a line
    for the log saying which and why."""

    train: Any
    val: Any | None
    line: str

    def meta(self) -> dict[str, Any]:
        """What checkpoints record about the choice of `best`."""
        return {"split": "val" if self.val is not None else None,
                "images": len(self.val) if self.val is not None else 0, "how": self.line}


NO_BEST = "no best/ checkpoint: eval, predict and export use last/"


def validation_split(data: Any, fraction: float, seed: int) -> Validation:
    """The run's validation images (see the module's docstring); too few training images to
    hold any out in a class, or `fraction` 0, gives none."""
    own = getattr(data, "val", None)
    train = data.train
    if own is not None and len(own):
        return Validation(train, own, f"validation: the data set's own validation split "
                                      f"({len(own):,} images) chooses best/; the test split "
                                      "is scored once, at the end")
    if fraction <= 0:
        return Validation(train, None, f"no validation split (--val-split 0): {NO_BEST}")
    labels = _labels(train)
    kept, held = stratified_split(labels, fraction, seed, "validation")
    if len(held) == 0 or len(kept) == 0:
        return Validation(train, None, f"no validation split: {len(train)} training images "
                                       f"are too few to hold out {fraction:g} of each class; "
                                       f"{NO_BEST}")
    return Validation(_take(train, kept), _take(train, held),
                      f"validation: {len(held):,} of the {len(train):,} training images held "
                      f"out ({fraction:g} of each class, seed {seed}) choose best/; training "
                      f"on {len(kept):,}; the test split is scored once, at the end")
