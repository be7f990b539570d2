"""MobileNet v1 (paper counts), v2 and v3 (identical to torchvision), and the shared block."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import convzoo
from convzoo.layers import SqueezeExcite
from convzoo.layers.mbconv import InvertedResidual
from convzoo.weights import load_state
from peer_checks import randomise_bn


def _count(name: str, **kw) -> int:
    with torch.device("meta"):
        model = convzoo.create_model(name, **kw)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "params", "macs", "paper_params", "paper_macs"), [
    # Howard et al. 2017, Table 6: 1.0 MobileNet-224 4.2M / 569M; 0.5 MobileNet-224 1.3M / 149M
    ("mobilenet_v1", 4_231_976, 568_740_352, 4.2e6, 569e6),
    ("mobilenet_v1_050", 1_331_592, 149_497_088, 1.3e6, 149e6),
])
def test_v1_counts_match_the_paper(name, params, macs, paper_params, paper_macs) -> None:
    prof = convzoo.summary(name)
    assert prof.total_params == params
    assert prof.total_macs == macs
    assert abs(params - paper_params) / paper_params < 0.03
    assert abs(macs - paper_macs) / paper_macs < 0.01


def test_v1_width_and_resolution_arguments() -> None:
    assert _count("mobilenet_v1", alpha=0.5) == 1_331_592
    # Table 7: resolution changes the operations, not the parameters
    prof = convzoo.summary("mobilenet_v1", resolution=128)
    assert prof.input_size == (3, 128, 128)
    assert prof.total_params == 4_231_976
    assert round(prof.total_macs / 1e6) == 186


def test_v1_last_stage_keeps_7x7() -> None:
    # Table 1's second-to-last "Conv dw / s2" is a typo: the map stays 7x7
    with torch.device("meta"):
        model = convzoo.create_model("mobilenet_v1")
    feats = model.forward_features(torch.empty(1, 3, 224, 224, device="meta"))
    assert feats.shape == (1, 1024, 7, 7)
    assert model.stages[-1][-1].dw.conv.stride == (1, 1)


@pytest.mark.parametrize(("name", "params"), [
    ("mobilenet_v2", 3_504_872), ("mobilenet_v3_large", 5_483_032),
    ("mobilenet_v3_small", 2_542_856),
])
def test_v2_v3_counts(name: str, params: int) -> None:
    assert _count(name) == params


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"])
def test_identical_to_torchvision(name: str) -> None:
    peer = getattr(torchvision.models, name)()
    randomise_bn(peer, scale=0.2)
    ours = convzoo.create_model(name)
    report = load_state(ours, peer.state_dict(), "peer")
    assert "torchvision" in report.source
    peer.eval()
    ours.eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), peer(x), atol=1e-5, rtol=1e-5)


def test_one_block_and_one_se_for_all_families() -> None:
    names = ("mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_lite0")
    for name in names:
        with torch.device("meta"):
            model = convzoo.create_model(name)
        blocks = [b for stage in model.stages for b in stage]
        assert blocks and all(isinstance(b, InvertedResidual) for b in blocks), name
    with torch.device("meta"):
        v3 = convzoo.create_model("mobilenet_v3_large")
        b0 = convzoo.create_model("efficientnet_b0")
    se_v3 = [m for m in v3.modules() if isinstance(m, SqueezeExcite)]
    se_b0 = [m for m in b0.modules() if isinstance(m, SqueezeExcite)]
    assert len(se_v3) == 8 and len(se_b0) == 16
    assert isinstance(se_v3[0].gate, nn.Hardsigmoid) and isinstance(se_b0[0].gate, nn.Sigmoid)
    # no module of the families' own defines another squeeze-and-excitation
    assert not [m for m in (*v3.modules(), *b0.modules())
                if "excit" in type(m).__name__.lower() and not isinstance(m, SqueezeExcite)]


def test_residual_only_where_shapes_allow() -> None:
    block = InvertedResidual(16, 16, 96, 3, 1)
    assert block.use_residual
    assert not InvertedResidual(16, 24, 96, 3, 1).use_residual
    assert not InvertedResidual(16, 16, 96, 3, 2).use_residual
    assert not hasattr(InvertedResidual(16, 16, 16), "expand")
