"""The batches of one epoch, whatever the split: :func:`make_loader`.

In-memory splits are batched by :mod:`.batches`, image folders by :mod:`.folder_batches`;
both share the device-side :class:`~.batches.Pipeline` and the determinism described there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import UserInputError
from .augment import Augment, adaptation, get_augment
from .batches import ArrayBatches, Batches, Pipeline, shard, split_eigen
from .dataset import ArraySplit, FolderSplit

# Pipeline and split_eigen are named here as well, where callers have always imported them.
__all__ = ["Augment", "Batches", "Pipeline", "adaptation", "make_loader", "split_eigen"]


def drops_partial_batch(n: int, batch_size: int) -> bool:
    """Whether a training epoch of `n` images leaves out its partial last batch: only where
    that batch is a small part of the epoch (ten full batches or more; the images left out
    differ every epoch, being shuffled) or a single image (batch norm cannot train on one).
    Small data sets keep every image: 96 images at batch 64 train on 64 + 32."""
    full, rest = divmod(n, batch_size)
    return full >= 1 and rest > 0 and (full >= 10 or rest == 1)


def make_loader(split: ArraySplit | FolderSplit, *, batch_size: int, train: bool,
                device: torch.device | str, input_size: tuple[int, int, int],
                mean: Sequence[float], std: Sequence[float],
                augment: Augment | str | None, seed: int, epoch: int,
                drop_last: bool | None = None, workers: int = 0,
                channels_last: bool = False,
                max_bad_images: float | int = 0.01,
                rank: int = 0, world_size: int = 1, start_batch: int = 0) -> Batches:
    """The batches of one epoch; see the module docstring.

    Training shuffles and augments; evaluation keeps the order and only adapts and normalises.
    drop_last (default: when training and `drops_partial_batch` says so) drops a last
    partial batch. For image folders, more unreadable images than `max_bad_images` (a fraction
    of the split, or a count; at least one is always tolerated) stop the epoch with an error.
    With world_size > 1 (DDP), this process takes its share of the epoch, see `shard`.
    `start_batch` skips the epoch's first batches (a resumed epoch), drawing nothing for them."""
    if batch_size < 1:
        raise UserInputError(f"batch size must be at least 1, got {batch_size}")
    device = torch.device(device)
    augment = get_augment(augment) if train else None
    input_size = tuple(int(v) for v in input_size)  # type: ignore[assignment]
    positions = shard(len(split), train, rank, world_size)
    if drop_last is None:
        m = len(split) if positions is None else len(positions)
        drop_last = train and drops_partial_batch(m, batch_size)
    if isinstance(split, ArraySplit):
        pipeline = Pipeline(split.image_size, input_size, mean, std, device, channels_last)
        return ArrayBatches(split, batch_size=batch_size, train=train, device=device,
                            pipeline=pipeline, augment=augment, seed=seed, epoch=epoch,
                            drop_last=drop_last, positions=positions, start_batch=start_batch)
    if isinstance(split, FolderSplit):
        from .folder_batches import FolderBatches
        from .workers import workers_for
        workers = workers_for(workers)
        return FolderBatches(split, batch_size=batch_size, train=train, device=device,
                             input_size=input_size, mean=mean, std=std, augment=augment,
                             seed=seed, epoch=epoch, drop_last=drop_last, workers=workers,
                             channels_last=channels_last, max_bad_images=max_bad_images,
                             positions=positions, start_batch=start_batch)
    raise TypeError(f"make_loader takes an ArraySplit or a FolderSplit, not {type(split)}")
