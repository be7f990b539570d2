"""Depthwise separable convolution: a per-channel spatial filter, then a 1x1 channel mix."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .activations import ActSpec, make_act
from .conv import NormSpec, make_norm


class SeparableConv2d(nn.Sequential):
    """`depthwise` (k x k, groups=in_ch) -> [`norm`, `act`] -> `pointwise` (1x1).

    A k x k convolution from C_in to C_out channels costs k*k*C_in*C_out weights; the separable
    form costs k*k*C_in + C_in*C_out. Xception puts nothing between the two (its section 4.7
    found an activation there hurt), so `norm` and `act` default to none; MobileNet-style blocks
    put a norm and an activation there.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        bias: bool = False,
        norm: NormSpec = None,
        act: ActSpec = None,
    ) -> None:
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["depthwise"] = nn.Conv2d(in_ch, in_ch, kernel_size, stride, padding,
                                        dilation=dilation, groups=in_ch, bias=bias)
        norm_layer = make_norm(norm, in_ch)
        if norm_layer is not None:
            layers["norm"] = norm_layer
        if act is not None:
            layers["act"] = make_act(act)
        layers["pointwise"] = nn.Conv2d(in_ch, out_ch, 1, bias=bias)
        super().__init__(layers)
        self.in_channels, self.out_channels = in_ch, out_ch
