"""Shared by the equivalence tests against torchvision, timm and reference code."""

from __future__ import annotations

import torch
from torch import nn


def randomise_bn(model: nn.Module, scale: float = 0.5, var: tuple[float, float] = (0.5, 2.0),
                 seed: int = 1) -> None:
    """Batch norm at its defaults is nearly the identity in eval mode (timm even zeroes some of
    it), which would hide a wrong key mapping: give each one non-trivial statistics and
    affine parameters. Deep nets want a smaller `scale`, so activations stay finite."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = var
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * scale)
                m.running_var.copy_(lo + (hi - lo) * torch.rand(n, generator=g))
                if m.affine:
                    m.weight.copy_(1 + scale * torch.randn(n, generator=g))
                    m.bias.copy_(scale * torch.randn(n, generator=g))
