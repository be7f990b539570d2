"""Convolution building blocks shared by the families."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .activations import ActSpec, make_act

NormSpec = str | Callable[[int], nn.Module] | None


def make_norm(norm: NormSpec, channels: int) -> nn.Module | None:
    if norm is None:
        return None
    if norm == "bn":
        return nn.BatchNorm2d(channels)
    if isinstance(norm, str):
        raise ValueError(f"unknown norm {norm!r}; use 'bn', None or a callable")
    return norm(channels)


class ConvNormAct(nn.Sequential):
    """conv -> norm -> act, with children named `conv`, `bn`, `act` (absent ones left out).

    Padding defaults to 'same' for odd kernels at stride 1; the bias is off when a norm follows,
    since the norm's shift makes it redundant.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int = 1,
        padding: int | tuple[int, int] | None = None,
        groups: int = 1,
        dilation: int = 1,
        norm: NormSpec = "bn",
        act: ActSpec = "relu",
        bias: bool | None = None,
    ) -> None:
        if padding is None:
            ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            padding = (dilation * (ks[0] - 1) // 2, dilation * (ks[1] - 1) // 2)
        norm_layer = make_norm(norm, out_ch)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["conv"] = nn.Conv2d(
            in_ch, out_ch, kernel_size, stride, padding, dilation=dilation, groups=groups,
            bias=norm_layer is None if bias is None else bias,
        )
        if norm_layer is not None:
            layers["bn"] = norm_layer
        if act is not None:
            layers["act"] = make_act(act)
        super().__init__(layers)
        self.in_channels, self.out_channels = in_ch, out_ch


class LRN(nn.Module):
    """Local response normalisation in the AlexNet paper's form (section 3.3).

    b = a / (k + alpha * sum_{n neighbours} a^2) ^ beta. The sum is an average over n
    neighbouring channels times n (Caffe's and PyTorch's convention divides alpha by n, so
    the paper's alpha is multiplied by n). The arithmetic is `F.local_response_norm`'s, bit
    for bit, but for an odd n the zeros beyond the first and last channel come from the
    pool's own padding rather than from `F.pad`: the legacy ONNX exporter loses the map's size
    at that pad, and a later adaptive pool (VGG's A-LRN column) then cannot be exported.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return F.local_response_norm(x, self.size, self.alpha * self.size, self.beta,
                                         self.k)
        n, sq = self.size, x.mul(x).unsqueeze(1)  # channels as depth: (N, 1, C, H, W)
        if n % 2 and x.shape[1] >= n:  # count_include_pad: padded zeros count, as F.pad's do
            div = F.avg_pool3d(sq, (n, 1, 1), stride=1, padding=(n // 2, 0, 0))
        else:  # an even window pads one channel less after than before; the pool's own
            # padding also needs at least n channels
            div = F.avg_pool3d(F.pad(sq, (0, 0, 0, 0, n // 2, (n - 1) // 2)), (n, 1, 1),
                               stride=1)
        return x / div.squeeze(1).mul(self.alpha * n).add(self.k).pow(self.beta)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation (Hu et al. 2018): global pool, bottleneck, gate, rescale.

    Children `fc1`, `fc2` are 1x1 convolutions, the layout torchvision and timm both use.
    """

    def __init__(
        self, channels: int, squeeze_channels: int, act: ActSpec = "relu",
        gate: ActSpec = "sigmoid",
    ) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.act = make_act(act)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = make_act(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.squeeze(x)))))

    def squeeze(self, x: torch.Tensor) -> torch.Tensor:
        """The global average of each map: N x C x 1 x 1."""
        return x.mean((2, 3), keepdim=True)
