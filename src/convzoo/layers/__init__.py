"""Layers shared by the model families."""

from .activations import ACTIVATIONS, ScaledTanh, act_factory, make_act
from .conv import LRN, ConvNormAct, SqueezeExcite, make_norm

__all__ = [
    "ACTIVATIONS", "ScaledTanh", "act_factory", "make_act",
    "LRN", "ConvNormAct", "SqueezeExcite", "make_norm",
]
