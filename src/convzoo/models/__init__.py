"""The families; importing a family's module registers its models."""

from . import alexnet, inception_resnet, lenet, vgg, xception  # noqa: F401
from .base import ClassifierHead, ConvNet, ModelOutput, Paper, pool_flatten

__all__ = ["ClassifierHead", "ConvNet", "ModelOutput", "Paper", "pool_flatten"]
