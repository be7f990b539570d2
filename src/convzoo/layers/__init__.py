"""Layers shared by the model families."""

from .activations import ACTIVATIONS, ScaledTanh, act_factory, make_act
from .conv import LRN, ConvNormAct, SqueezeExcite, make_norm
from .highway import Highway, HighwayConv2d, HighwayLinear
from .separable import SeparableConv2d

__all__ = [
    "ACTIVATIONS", "ScaledTanh", "act_factory", "make_act",
    "LRN", "ConvNormAct", "SqueezeExcite", "make_norm",
    "Highway", "HighwayConv2d", "HighwayLinear", "SeparableConv2d",
]
