"""Inception-ResNet-v2: the released (timm) layout and the paper's Figure 15."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import convzoo
from convzoo.models.inception_resnet import InceptionResidual
from convzoo.weights import load_state
from peer_checks import randomise_bn

TIMM_PARAMS = 55_843_464  # timm.create_model("inception_resnet_v2").parameters(), timm 1.0


def _blocks(model: nn.Module) -> list[list[InceptionResidual]]:
    return [[b for b in stage.blocks] for stage in model.stages]


def test_parameter_count_is_timms() -> None:
    model = convzoo.create_model("inception_resnet_v2")
    assert sum(p.numel() for p in model.parameters()) == TIMM_PARAMS


def test_same_outputs_as_timm() -> None:
    timm = pytest.importorskip("timm")
    peer = timm.create_model("inception_resnet_v2", pretrained=False)
    assert sum(p.numel() for p in peer.parameters()) == TIMM_PARAMS
    randomise_bn(peer, scale=0.1, var=(0.5, 1.5))
    ours = convzoo.create_model("inception_resnet_v2")
    report = load_state(ours, peer.state_dict(), "timm")
    assert report.loaded == len(peer.state_dict())
    ours.eval(), peer.eval()
    x = torch.randn(2, 3, 139, 139)  # 3x3 maps in the last stage
    with torch.no_grad():
        feats, peer_feats = ours.forward_features(x), peer.forward_features(x)
        torch.testing.assert_close(feats, peer_feats, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.forward_head(feats), peer.forward_head(peer_feats),
                                   atol=1e-5, rtol=1e-5)


def test_released_layout_10_20_10_with_a_linear_last_block() -> None:
    with torch.device("meta"):
        model = convzoo.create_model("inception_resnet_v2")
    blocks = _blocks(model)
    assert [len(b) for b in blocks] == [10, 20, 10]
    assert [{b.scale for b in bs[:-1]} for bs in blocks] == [{0.17}, {0.10}, {0.20}]
    last = blocks[2][-1]
    assert last.scale == 1.0 and isinstance(last.act, nn.Identity)
    assert model.num_features == 1536


def test_paper_figure15_layout_and_widths() -> None:
    with torch.device("meta"):
        model = convzoo.create_model("inception_resnet_v2_paper")
        x = model.stem(torch.empty(1, 3, 299, 299))
        assert x.shape == (1, 384, 35, 35)  # Figure 3's output
        shapes = []
        for stage in model.stages:
            x = stage(x)
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(384, 35, 35), (1152, 17, 17), (2144, 8, 8)]
    blocks = _blocks(model)
    assert [len(b) for b in blocks] == [5, 10, 5]
    assert [{b.scale for b in bs} for bs in blocks] == [{0.17}, {0.10}, {0.20}]
    assert all(isinstance(b.act, nn.ReLU) for bs in blocks for b in bs)
    assert model.weight_sources == ()


def test_residual_block_adds_the_scaled_projection() -> None:
    model = convzoo.create_model("inception_resnet_v2_paper").eval()
    block = _blocks(model)[0][0]
    x = torch.randn(1, 384, 5, 5)
    with torch.no_grad():
        expected = torch.relu(x + 0.17 * block.proj(block.branches(x)))
        torch.testing.assert_close(block(x), expected)


@pytest.mark.parametrize("name", ["inception_resnet_v2", "inception_resnet_v2_paper"])
def test_smallest_input_is_75(name: str) -> None:
    with torch.device("meta"):
        model = convzoo.create_model(name).eval()
        assert model(torch.empty(2, 3, 75, 75)).shape == (2, 1000)
        with pytest.raises(RuntimeError):
            model(torch.empty(2, 3, 74, 74))
