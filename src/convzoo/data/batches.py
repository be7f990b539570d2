"""Batches for training and evaluation: the device-side pipeline and in-memory splits.

An :class:`ArraySplit` is held on the training device as uint8 (copied once) and every batch is
gathered, augmented, adapted to the model's input and normalised there, with whole-batch
operations. An :class:`FolderSplit` streams through DataLoader worker processes that decode
and size the images; the batch then goes through the same device-side steps.

Randomness (order, crop offsets, flips, boxes) is drawn on the CPU from generators seeded by
(seed, epoch) (and, for image folders, the batch's or image's index), so a seed and an epoch
give the same batches on the CPU and on a GPU, and the loader's whole state is its position:
(epoch, batches taken). `start_batch` resumes an epoch there, giving exactly the batches the
uninterrupted epoch would have given from that point; `Batches.position` says how far an
epoch has got.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch.utils.weak import WeakTensorKeyDictionary

from ..errors import UserInputError
from .augment import (
    Augment,
    Plan,
    plan,
    resize,
    resized_crop,
    sample_boxes,
    sample_shift_flip,
    shift_flip,
)
from .dataset import ArraySplit
from .photometric import lighting_offsets, rgb_eigen, sample_lighting, sample_scale_jitter
from .seeding import generator


class Pipeline:
    """uint8 batch (as stored) -> float32 batch as the model expects, on the batch's device."""

    def __init__(self, src: tuple[int, int, int], dst: tuple[int, int, int],
                 mean: Sequence[float], std: Sequence[float], device: torch.device,
                 channels_last: bool = False) -> None:
        self.plan: Plan = plan(src, dst)
        # Grey images fed to a model whose weights declare per-channel statistics (ImageNet's)
        # are replicated first and then normalised channel by channel, as the weights expect.
        self.replicate_first = (self.plan.channels == "replicate" and len(mean) == dst[0]
                                and (len(set(mean)) > 1 or len(set(std)) > 1))
        c_norm = (dst[0] if self.replicate_first
                  else 1 if self.plan.channels == "average" else src[0])
        mean_t, std_t = _stats_for(mean, c_norm), _stats_for(std, c_norm)
        # (x / 255 - mean) / std as one multiply and one add
        self.scale = (1 / (255 * std_t)).view(1, -1, 1, 1).to(device)
        self.offset = (-mean_t / std_t).view(1, -1, 1, 1).to(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor, shift: torch.Tensor | None = None,
                 flip: torch.Tensor | None = None,
                 boxes: torch.Tensor | None = None,
                 light: torch.Tensor | None = None) -> torch.Tensor:
        if x.dtype != torch.uint8:
            raise TypeError(f"the pipeline takes uint8 images, got {x.dtype}")
        p = self.plan
        if boxes is not None:
            x = resized_crop(x.float(), boxes, p.dst[1:], flip)
        else:
            if shift is not None or flip is not None:
                x = shift_flip(x, shift, flip)
            if p.spatial == "pad":
                x = F.pad(x, p.pad)  # on uint8: zero is the background of the digits
            x = x.float()
            if p.spatial == "resize":
                x = resize(x, p.dst[1:])
        if light is not None:  # AlexNet's PCA lighting: one RGB offset per image, 0..1 scale
            x = x + (light.to(x) * 255)[:, :, None, None]
        if p.channels == "average":
            x = x.mean(1, keepdim=True)
        if self.replicate_first:
            x = x.expand(-1, p.dst[0], -1, -1) * self.scale + self.offset
        else:
            x = x.mul_(self.scale).add_(self.offset)  # in place: x is a float copy by now
        if p.channels == "replicate" and not self.replicate_first:
            x = x.expand(-1, p.dst[0], -1, -1)
        return x.contiguous(memory_format=self.memory_format)


def _stats_for(values: Sequence[float], channels: int) -> torch.Tensor:
    t = torch.tensor(list(values), dtype=torch.float32)
    if len(t) == channels:
        return t
    if len(t) == 1:
        return t.expand(channels).clone()
    if channels == 1:
        return t.mean().view(1)  # for images averaged to gray: the channels' average
    raise UserInputError(f"{len(t)} normalisation values for {channels}-channel images")


class Batches:
    """One epoch of (x, y) batches: x float32 N x C x H x W, y int64 N, both on the device."""

    def __init__(self, num_batches: int, num_samples: int, start: int = 0) -> None:
        if not 0 <= start <= num_batches:
            raise UserInputError(f"cannot start an epoch of {num_batches} batches at batch "
                                 f"{start}")
        self.num_batches = num_batches
        self.num_samples = num_samples
        self.bad_images: list[str] = []  # paths skipped because they could not be decoded
        #: the batches of this epoch taken before this object's first one (a resumed epoch)
        self.start = start
        #: the batches of this epoch taken so far, `start` included: where to resume
        self.position = start

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError


def _num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else -(-n // batch_size)


def shard(n: int, train: bool, rank: int, world_size: int) -> torch.Tensor | None:
    """The positions in the epoch's order that this process takes: every world_size-th from
    rank on; when training, the same count on every process (DDP steps in lock-step)."""
    if world_size == 1:
        return None
    if not 0 <= rank < world_size:
        raise UserInputError(f"rank {rank} is outside 0..{world_size - 1}")
    positions = torch.arange(rank, n, world_size)
    return positions[: n // world_size] if train else positions


_EIGEN = WeakTensorKeyDictionary()  # a training set's images -> its RGB eigen pairs


def split_eigen(split: ArraySplit) -> tuple[torch.Tensor, torch.Tensor]:
    """The RGB covariance's eigenvalues and eigenvectors of a split, computed once per split."""
    if split.images not in _EIGEN:
        _EIGEN[split.images] = rgb_eigen(split.images)
    return _EIGEN[split.images]


class ArrayBatches(Batches):
    def __init__(self, split: ArraySplit, *, batch_size: int, train: bool, device: torch.device,
                 pipeline: Pipeline, augment: Augment | None, seed: int, epoch: int,
                 drop_last: bool, positions: torch.Tensor | None = None,
                 start_batch: int = 0) -> None:
        n = len(split)
        m = n if positions is None else len(positions)
        super().__init__(_num_batches(m, batch_size, drop_last), m, start_batch)
        self.split, self.batch_size, self.device = split, batch_size, device
        self.pipeline = pipeline
        g = generator("epoch", seed, epoch)
        # drawn for the whole epoch whatever the sharding, so the processes together see
        # what one process would
        order = torch.randperm(n, generator=g) if train else None
        shift = flip = boxes = None
        if train and augment is not None:
            if augment.random_resized_crop:
                _, h, w = split.image_size
                boxes = sample_boxes(n, h, w, augment.scale, augment.ratio, g)
                flip = torch.rand(n, generator=g) < 0.5 if augment.flip else None
            else:
                shift, flip = sample_shift_flip(n, augment.crop_pad, augment.flip, g)
        light = None
        if train and augment is not None:
            # the papers' presets draw after everything above, so other presets' batches stay
            # the same for a seed
            if augment.scale_jitter:
                _, h, w = split.image_size
                crop = min(pipeline.plan.dst[1:])
                lo, hi = (round(f * crop) for f in augment.scale_jitter)
                boxes, _ = sample_scale_jitter(n, h, w, crop, lo, hi, g)
            if augment.pca_lighting:
                vals, vecs = split_eigen(split)
                light = lighting_offsets(sample_lighting(n, augment.pca_lighting, g), vals, vecs)
        if positions is not None:
            order = positions if order is None else order[positions]
            shift, flip, boxes, light = (None if t is None else t[positions]
                                         for t in (shift, flip, boxes, light))
        self.order, self.shift, self.flip, self.boxes = order, shift, flip, boxes
        self.light = light

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        images, labels = self.split.on(self.device)
        dev = self.device
        order = None if self.order is None else self.order.to(dev, non_blocking=True)
        shift = None if self.shift is None else self.shift.to(dev, non_blocking=True)
        flip = None if self.flip is None else self.flip.to(dev, non_blocking=True)
        boxes = None if self.boxes is None else self.boxes.to(dev, non_blocking=True)
        light = None if self.light is None else self.light.to(dev, non_blocking=True)
        bs = self.batch_size
        self.position = self.start
        for i in range(self.start, self.num_batches):
            self.position = i + 1
            s, e = i * bs, min((i + 1) * bs, self.num_samples)
            if order is None:
                x, y = images[s:e], labels[s:e]
            else:
                idx = order[s:e]
                # index_select: many times faster than images[idx] for whole rows on the CPU
                x, y = images.index_select(0, idx), labels.index_select(0, idx)
            yield self.pipeline(
                x,
                None if shift is None else shift[s:e],
                None if flip is None else flip[s:e],
                None if boxes is None else boxes[s:e],
                None if light is None else light[s:e],
            ), y


def bad_limit(n: int, max_bad_images: float | int) -> int:
    """The number of unreadable images tolerated in a split of n."""
    if isinstance(max_bad_images, float) and max_bad_images < 1:
        return max(1, int(max_bad_images * n))
    return max(1, int(max_bad_images))


def ignore_stop_signals(_worker_id: int = 0) -> None:
    """A DataLoader `worker_init_fn`: a terminal's Ctrl-C, and a scheduler's SIGTERM on
    preemption, reach the whole process group; workers leave both to the main process, which
    finishes its step, saves and then stops them (a worker whose main process is gone exits by
    itself: DataLoader's watchdog)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
