"""Xception: Figure 5's layout, separable convolutions, and equivalence with timm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import convzoo
from convzoo.layers import SeparableConv2d
from convzoo.models.xception import MIDDLE, XceptionBlock
from convzoo.weights import load_state
from peer_checks import randomise_bn

TIMM_PARAMS = 22_855_952  # timm.create_model("legacy_xception").parameters(), timm 1.0


def test_parameter_count_is_timms() -> None:
    model = convzoo.create_model("xception")
    assert sum(p.numel() for p in model.parameters()) == TIMM_PARAMS


def test_same_outputs_as_timm_legacy_xception() -> None:
    timm = pytest.importorskip("timm")
    peer = timm.create_model("legacy_xception", pretrained=False)
    assert sum(p.numel() for p in peer.parameters()) == TIMM_PARAMS
    randomise_bn(peer, scale=0.1, var=(0.5, 1.5))
    ours = convzoo.create_model("xception")
    report = load_state(ours, peer.state_dict(), "timm")
    assert report.loaded == len(peer.state_dict())
    ours.eval(), peer.eval()
    x = torch.randn(2, 3, 150, 150)
    with torch.no_grad():
        feats, peer_feats = ours.forward_features(x), peer.forward_features(x)
        torch.testing.assert_close(feats, peer_feats, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.forward_head(feats), peer.forward_head(peer_feats),
                                   atol=1e-5, rtol=1e-5)


def test_figure5_flows_and_shapes() -> None:
    with torch.device("meta"):
        model = convzoo.create_model("xception")
        x = torch.empty(1, 3, 299, 299)
        x = model.stem(x)
        assert x.shape == (1, 64, 147, 147)
        shapes = []
        for stage in model.stages:
            x = stage(x)
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(728, 19, 19), (728, 19, 19), (2048, 10, 10)]  # entry, middle, exit
    assert len(model.stages[1]) == len(MIDDLE.layers) == 8
    assert all(isinstance(b.shortcut, nn.Identity) for b in model.stages[1])
    assert model.num_features == 2048


def test_blocks_start_with_an_activation_except_the_first() -> None:
    with torch.device("meta"):
        model = convzoo.create_model("xception")
    blocks = [m for m in model.modules() if isinstance(m, XceptionBlock)]
    assert len(blocks) == 12
    assert "act" not in blocks[0].units[0]._modules
    assert all(isinstance(b.units[0].act, nn.ReLU) for b in blocks[1:])


def test_block_leaves_its_input_intact() -> None:
    """The shortcut reads the block's input: the branch's first ReLU must not overwrite it."""
    from convzoo.models.xception import Block

    block = XceptionBlock(16, Block((16, 16, 16)), "relu").eval()
    x = torch.randn(1, 16, 9, 9)
    x0 = x.clone()
    y = block(x)
    torch.testing.assert_close(x, x0)
    torch.testing.assert_close(y, block.pool(block.units(x0.clone())) + x0)


def test_separable_conv_parameters_and_shape() -> None:
    sep = SeparableConv2d(32, 64, 3, stride=2)
    assert sep.depthwise.groups == 32
    assert sum(p.numel() for p in sep.parameters()) == 3 * 3 * 32 + 32 * 64
    assert sep(torch.randn(1, 32, 15, 15)).shape == (1, 64, 8, 8)
    mid = SeparableConv2d(8, 4, norm="bn", act="relu")
    assert [n for n, _ in mid.named_children()] == ["depthwise", "norm", "act", "pointwise"]
