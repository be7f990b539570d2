"""MNIST, Fashion-MNIST (IDX files) and CIFAR-10/100 (python pickles): finding and reading them.

A download goes through torchvision's dataset classes, into the first place searched that is
not the system's, and the files are then read here like any others. No checksum is checked on
local files: Debian's Fashion-MNIST, for one, is recompressed and its .gz files differ from
upstream's while holding the same data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserInputError
from . import places
from .dataset import ArraySplit, DataSet, array_dataset
from .idx import read_idx
from .places import find_folder, missing
from .safe_pickle import safe_load

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]

IDX_SUBFOLDERS = {
    "mnist": ("mnist", "MNIST/raw", "MNIST", "mnist/raw"),
    "fashion-mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST",
                      "fashion-mnist/data/fashion", "fashionmnist"),
}
IDX_FILES = {("train", "images"): "train-images-idx3-ubyte",
             ("train", "labels"): "train-labels-idx1-ubyte",
             ("test", "images"): "t10k-images-idx3-ubyte",
             ("test", "labels"): "t10k-labels-idx1-ubyte"}

CIFAR = {
    "cifar10": dict(folder="cifar-10-batches-py", train=[f"data_batch_{i}" for i in range(1, 6)],
                    test=["test_batch"], meta="batches.meta", labels="labels",
                    names="label_names", url="https://www.cs.toronto.edu/~kriz/cifar.html"),
    "cifar100": dict(folder="cifar-100-python", train=["train"], test=["test"], meta="meta",
                     labels="fine_labels", names="fine_label_names",
                     url="https://www.cs.toronto.edu/~kriz/cifar.html"),
}
CIFAR_SUBFOLDERS = {
    "cifar10": ("cifar-10-batches-py", "cifar10/cifar-10-batches-py",
                "CIFAR10/cifar-10-batches-py", "cifar10", "cifar-10"),
    "cifar100": ("cifar-100-python", "cifar100/cifar-100-python",
                 "CIFAR100/cifar-100-python", "cifar100", "cifar-100"),
}
TORCHVISION_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10",
                     "cifar100": "CIFAR100"}


# ---------------------------------------------------------------- IDX


def idx_file(folder: Path, split: str, kind: str) -> Path | None:
    """The file for (split, kind) in folder: the usual name, or with a dot before 'idx'
    (as some mirrors write it), raw or .gz."""
    stem = IDX_FILES[(split, kind)]
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in ("", ".gz"):
            p = folder / (name + suffix)
            if p.is_file():
                return p
    return None


def _has_idx(folder: Path) -> bool:
    return all(idx_file(folder, s, k) for s, k in IDX_FILES)


def _read_idx_split(folder: Path, split: str) -> ArraySplit:
    images_path = idx_file(folder, split, "images")
    labels_path = idx_file(folder, split, "labels")
    assert images_path is not None and labels_path is not None
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise UserInputError(f"{images_path} ({'x'.join(map(str, images.shape))}) and "
                             f"{labels_path} ({'x'.join(map(str, labels.shape))}) do not "
                             "match: expected N x H x W images and N labels")
    return ArraySplit(torch.from_numpy(np.ascontiguousarray(images, np.uint8))[:, None],
                      torch.from_numpy(labels.astype(np.int64)))


def load_idx_dataset(key: str, roots: Sequence[Path], explicit: Path | None,
                     download: bool) -> DataSet:
    subs = IDX_SUBFOLDERS[key]
    folder = find_folder(roots, subs, _has_idx, explicit)
    if folder is None and download:
        _download(key, roots)
        folder = find_folder(roots, subs, _has_idx, explicit)
    if folder is None:
        if key == "fashion-mnist":
            how = ("install Debian's package (apt-get install dataset-fashion-mnist), pass "
                   "--download (convzoo train/finetune) where a network exists, or put the "
                   "four IDX files in "
                   f"{roots[0]}/fashion-mnist/")
        else:
            how = ("pass --download (convzoo train/finetune) where a network exists, or put "
                   "the four IDX files "
                   f"(from http://yann.lecun.com/exdb/mnist/ or a mirror) in {roots[0]}/mnist/")
        raise missing(key, roots, "train-images-idx3-ubyte[.gz] and the other three IDX files",
                      how)
    classes = FASHION_MNIST_CLASSES if key == "fashion-mnist" else MNIST_CLASSES
    test = _checked(_read_idx_split(folder, "test"), len(classes), folder)
    return array_dataset(key, list(classes),
                         lambda: _checked(_read_idx_split(folder, "train"), len(classes), folder),
                         test, str(folder))


def _checked(split: ArraySplit, k: int, where: Path) -> ArraySplit:
    if len(split) and (split.labels.min() < 0 or split.labels.max() >= k):
        raise UserInputError(f"{where}: labels outside 0..{k - 1}; the files are corrupt")
    return split


# ---------------------------------------------------------------- CIFAR


def _get(d: Any, key: str, path: Path) -> Any:
    """d[key] whether the pickle wrote the key as bytes (Python 2) or str (Python 3)."""
    if isinstance(d, dict):
        for k in (key.encode(), key):
            if k in d:
                return d[k]
    raise UserInputError(f"{path}: not a CIFAR file (no {key!r} entry)")


def _read_cifar_file(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    d = safe_load(path)
    data, labels = _get(d, "data", path), _get(d, label_key, path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim not in (2, 4):
        raise UserInputError(f"{path}: 'data' is not a uint8 array of N x 3072 pixels")
    if data.size != len(data) * 3072:
        raise UserInputError(f"{path}: 'data' is {'x'.join(map(str, data.shape))}, not "
                             "N x 3072 pixels (N images of 3x32x32)")
    data = data.reshape(len(data), 3, 32, 32)
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise UserInputError(f"{path}: {label_key!r} is not a list of integer labels") from None
    if labels.shape != (len(data),):
        raise UserInputError(f"{path}: {len(data)} images but {labels.size} labels")
    return data, labels


def _has_cifar(spec: dict) -> Any:
    return lambda folder: all((folder / f).is_file() for f in spec["train"] + spec["test"])


def load_cifar(key: str, roots: Sequence[Path], explicit: Path | None,
               download: bool) -> DataSet:
    spec = CIFAR[key]
    folder = find_folder(roots, CIFAR_SUBFOLDERS[key], _has_cifar(spec), explicit)
    if folder is None and download:
        _download(key, roots)
        folder = find_folder(roots, CIFAR_SUBFOLDERS[key], _has_cifar(spec), explicit)
    if folder is None:
        files = ", ".join(spec["train"][:1] + (["..."] if len(spec["train"]) > 1 else [])
                          + spec["test"])
        raise missing(key, roots, f"{spec['folder']}/ ({files})",
                      "pass --download (convzoo train/finetune) where a network exists, or "
                      "unpack the python version "
                      f"from {spec['url']} into {roots[0]}/")

    def read(names: list[str]) -> ArraySplit:
        parts = [_read_cifar_file(folder / n, spec["labels"]) for n in names]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        return ArraySplit(torch.from_numpy(images), torch.from_numpy(labels))

    classes = _cifar_classes(key, folder / spec["meta"], spec["names"])
    test = _checked(read(spec["test"]), len(classes), folder)
    return array_dataset(key, classes, lambda: _checked(read(spec["train"]), len(classes), folder),
                         test, str(folder))


def _cifar_classes(key: str, meta: Path, names_key: str) -> list[str]:
    if meta.is_file():
        names = _get(safe_load(meta), names_key, meta)
        if not isinstance(names, list | tuple) or not all(isinstance(n, bytes | str)
                                                          for n in names):
            raise UserInputError(f"{meta}: {names_key!r} is not a list of class names")
        return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]
    if key == "cifar10":
        return list(CIFAR10_CLASSES)
    return [f"class{i}" for i in range(100)]  # without the meta file the names are unknown


# ---------------------------------------------------------------- download


def _download(key: str, roots: Sequence[Path]) -> None:
    """Fetch through torchvision into the first place that can be written."""
    import torchvision.datasets as tvd

    target = next((r for r in roots if r != places.SYSTEM_DIR and _writable(r)), None)
    if target is None:
        raise UserInputError(f"no writable place to download {key} into; pass --data-dir")
    cls = getattr(tvd, TORCHVISION_CLASS[key])
    try:
        for train in (True, False):
            cls(root=str(target), train=train, download=True)
    except Exception as e:  # network errors come in many types
        raise UserInputError(f"downloading {key} into {target} failed ({e}); put the files "
                             "there by hand") from None


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)
