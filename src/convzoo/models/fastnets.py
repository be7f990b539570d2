"""Small, fast networks for 28x28 images, built from the ResNet family's generic class.

`resnet_fmnist` (and the narrower `resnet_fmnist_s`) is a ResNet in the CIFAR layout of He
et al. (2015), section 4.2 -- a 3x3 stem with 16 filters, then three stages that halve the
map -- with two basic blocks per stage and four times the paper's widths: 64/128/256
(32/64/128 for `_s`). Shortcuts are 1x1 projections (option B) where the shape changes,
since the first block widens 16 -> 64 channels. Input 1x28x28, 10 classes: Fashion-MNIST as
stored, no resizing. It is what the `fashion_mnist` recipe trains, aiming at 94% test accuracy
in 10 epochs on a GPU, which `benchmarks/gpu_fashion_mnist.py` measures.
"""

from __future__ import annotations

from ..registry import register_model
from .resnet import Arch, ResNet

# Three stages of two basic blocks; 6n+2 = 14 layers with n = 2.
LAYOUTS: dict[str, Arch] = {
    "resnet_fmnist": Arch(14, "basic", (2, 2, 2), (64, 128, 256), "cifar", input_side=28),
    "resnet_fmnist_s": Arch(14, "basic", (2, 2, 2), (32, 64, 128), "cifar", input_side=28),
}


def _small(name: str, num_classes: int = 10, in_channels: int = 1, **kw) -> ResNet:
    kw.setdefault("shortcut", "B")
    return ResNet(LAYOUTS[name], num_classes=num_classes, in_channels=in_channels, **kw)


@register_model
def resnet_fmnist(**kw) -> ResNet:
    return _small("resnet_fmnist", **kw)


@register_model
def resnet_fmnist_s(**kw) -> ResNet:
    return _small("resnet_fmnist_s", **kw)
