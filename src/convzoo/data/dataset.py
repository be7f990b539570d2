"""The types every reader returns and the training loop takes: a split held in memory
(:class:`ArraySplit`), a split streamed from files (:class:`FolderSplit`), and the
:class:`DataSet` that holds two splits with their classes and statistics; with the helpers the
readers share to build them (statistics, held-out splits).

This module imports no reader and no loader: they all import it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import UserInputError
from .seeding import generator

#: Fraction of a data set held out for testing where it comes without a test split.
TEST_FRACTION = 0.2


@dataclass
class ArraySplit:
    """A whole split in memory: uint8 images N x C x H x W and int64 labels N, on the CPU."""

    images: torch.Tensor
    labels: torch.Tensor
    _device_copies: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 N x C x H x W, got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        self.labels = self.labels.to(torch.int64)
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.images.shape[0]} images but labels of shape "
                             f"{tuple(self.labels.shape)}")
        self.images = self.images.contiguous()

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_size(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return c, h, w

    def on(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels on `device`, copied once and kept (uint8 is 4x smaller than
        float, so even CIFAR's 50,000 images take 150 MB)."""
        device = torch.device(device)
        if device.type == "cpu":
            return self.images, self.labels
        key = str(device)
        if key not in self._device_copies:
            self._device_copies[key] = (self.images.to(device), self.labels.to(device))
        return self._device_copies[key]


@dataclass
class FolderSplit:
    """A split too large (or too varied in size) to hold in memory: (path, label) pairs."""

    samples: list[tuple[str, int]]

    def __len__(self) -> int:
        return len(self.samples)


Split = ArraySplit | FolderSplit


class _ReadOnFirstUse:
    """A DataSet field that may be given as a zero-argument function: it is called the first
    time the field is read, and its value kept. `convzoo eval` scores the test split without
    reading the training split (six times larger for MNIST, five for CIFAR) or computing its
    statistics, which the run's checkpoint already holds."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:  # dataclasses ask the class for a default: there is none
            raise AttributeError(self.slot)
        value = obj.__dict__[self.slot]
        if callable(value):
            value = obj.__dict__[self.slot] = value()
        return value

    def __set__(self, obj: object, value: Any) -> None:
        obj.__dict__[self.slot] = value


@dataclass
class DataSet:
    name: str
    classes: list[str]
    # what is computed from the training split may be given as a function (_ReadOnFirstUse)
    train: Split = _ReadOnFirstUse()  # type: ignore[assignment]
    test: Split
    image_size: tuple[int, int, int]
    mean: tuple[float, ...] = _ReadOnFirstUse()  # type: ignore[assignment]
    std: tuple[float, ...] = _ReadOnFirstUse()  # type: ignore[assignment]
    source: str
    #: the data set's own validation split, where it comes with one (runs choose best/ on it)
    val: Split | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> str:
        c, h, w = self.image_size
        return (f"{self.name}: {len(self.train)} train / {len(self.test)} test images, "
                f"{c}x{h}x{w}, {self.num_classes} classes, from {self.source}")


# ---------------------------------------------------------------- statistics and splits


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation on the 0..1 scale, exact, from each channel's
    histogram of the 256 byte values (no float copy of the whole set)."""
    means, stds = [], []
    values = torch.arange(256, dtype=torch.float64)
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)
        count = hist.sum().clamp_min(1)
        mean = (hist * values).sum() / count
        var = (hist * (values - mean) ** 2).sum() / count
        means.append(mean.item() / 255)
        stds.append(max(var.sqrt().item(), 0.255) / 255)  # a constant channel: avoid 1/0
    return tuple(means), tuple(stds)


def stratified_split(labels: torch.Tensor, fraction: float, seed: int,
                     what: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, test): `fraction` of every class held out, chosen by `seed`."""
    g = generator("split", what, seed)
    train, test = [], []
    for k in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == k).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_test = round(len(idx) * fraction) if len(idx) > 1 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def array_dataset(name: str, classes: list[str], train: ArraySplit | Callable[[], ArraySplit],
                  test: ArraySplit, source: str) -> DataSet:
    """A data set of in-memory splits, normalised by the training split's statistics. `train`
    may be a function that reads it: it is then read (and its statistics computed) only when
    asked for, and must hold images of the test split's size."""
    read = train if callable(train) else (lambda: train)

    @functools.cache
    def checked() -> ArraySplit:
        split = read()
        if len(split) and split.image_size != test.image_size:
            raise UserInputError(f"{name} ({source}): training images are "
                                 f"{'x'.join(map(str, split.image_size))}, test images "
                                 f"{'x'.join(map(str, test.image_size))}")
        return split

    stats = functools.cache(lambda: channel_stats(checked().images))
    return DataSet(name=name, classes=classes, train=checked, test=test,
                   image_size=test.image_size, mean=lambda: stats()[0],
                   std=lambda: stats()[1], source=source)
