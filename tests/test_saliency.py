"""Grad-CAM and occlusion find the evidence where it is known to be: a model whose only
evidence for class 1 is a bright square, shown an image with that square in one quadrant."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from convzoo.models.base import ClassifierHead, ConvNet, pool_flatten
from convzoo.viz.saliency import draw_saliency, saliency


class SquareDetector(ConvNet):
    """Features: a 3x3 mean minus 0.5, through a ReLU (only a bright patch gets past); the
    head's class-1 logit grows with their average, class 0's falls."""

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv2d(1, 1, 3, padding=1)
        with torch.no_grad():
            conv.weight.fill_(1 / 9)
            conv.bias.fill_(-0.5)
        self.stem = nn.Sequential(conv, nn.ReLU())
        self.stages = nn.ModuleList([nn.Identity()])
        self.head = ClassifierHead(pool_flatten(), 1, 2, 0.0)
        with torch.no_grad():
            self.head.fc.weight.copy_(torch.tensor([[-20.0], [20.0]]))
            self.head.fc.bias.zero_()


def test_gradcam_and_occlusion_peak_in_the_quadrant_with_the_evidence(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 32, 32, generator=g) * 0.2  # dim noise everywhere: no evidence
    x[0, 0, 20:26, 4:10] = 1.0  # the square, in the bottom-left quadrant
    x[0, 0, 5, 18:30] = 1.0  # as bright but a thin line, top right: not evidence to it
    model = SquareDetector()
    s = saliency(model, x)
    assert s.target == 1 and s.prob > 0.5
    for m in (s.gradcam, s.occlusion):
        row, col = divmod(int(m.argmax()), m.shape[1])
        assert row >= 16 and col < 16, (row, col)  # bottom-left
        assert m[:16].max() < m.max() and m[:, 16:].max() < m.max()
    assert int(x[0, 0].argmax()) // 32 < 16  # the brightest pixel is not the evidence
    assert draw_saliency(x, s, tmp_path / "s.png", "why class 1?").stat().st_size > 0
