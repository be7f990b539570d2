"""The families; importing a family's module registers its models."""

from . import (  # noqa: F401  (importing a family registers its models)
    alexnet,
    efficientnet,
    fastnets,
    googlenet,
    highway,
    inception_resnet,
    lenet,
    mobilenet,
    resnet,
    vgg,
    xception,
)
from .base import ClassifierHead, ConvNet, ModelOutput, Paper, pool_flatten

__all__ = ["ClassifierHead", "ConvNet", "ModelOutput", "Paper", "pool_flatten"]
