"""Holding out part of a training split for validation, the same way for the same seed."""

from __future__ import annotations

import torch

from .catalog import ArraySplit, FolderSplit

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
