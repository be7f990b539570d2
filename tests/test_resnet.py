"""ResNet v1 / v1.5, shortcut options, plain and CIFAR networks, SE-ResNet, foreign weights."""

from __future__ import annotations

import json

import pytest
import timm
import torch
import torchvision
from torch import nn

import convzoo
from convzoo.cli import main
from convzoo.layers import ConvNormAct, SqueezeExcite
from convzoo.models.resnet import PadShortcut
from convzoo.weights import imagenet_class_names, load_state
from peer_checks import randomise_bn

TV_COUNTS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}
CIFAR_COUNTS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962,
                1202: 19_421_274}


def _n(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _count(name: str, **kw) -> int:
    with torch.device("meta"):
        return _n(convzoo.create_model(name, **kw))


@pytest.mark.parametrize("depth", TV_COUNTS)
def test_imagenet_counts_v1_and_v15(depth: int) -> None:
    assert _count(f"resnet{depth}") == TV_COUNTS[depth]
    if depth >= 50:
        assert _count(f"resnet{depth}_v1") == TV_COUNTS[depth]


@pytest.mark.parametrize("depth", CIFAR_COUNTS)
def test_cifar_counts(depth: int) -> None:
    with torch.device("meta"):
        model = convzoo.create_model(f"resnet{depth}")
    assert _n(model) == CIFAR_COUNTS[depth]
    assert model.num_classes == 10 and model.default_input_size == (3, 32, 32)
    assert [len(s) for s in model.stages] == [(depth - 2) // 6] * 3
    if depth != 1202:  # option A has no parameters, so the plain net counts the same
        assert _count(f"plain{depth}") == CIFAR_COUNTS[depth]


def test_plain_imagenet_nets_have_no_shortcuts() -> None:
    with torch.device("meta"):
        plain = convzoo.create_model("plain18")
    assert all(b.shortcut is None for s in plain.stages for b in s)
    # resnet18's three projection shortcuts (conv 1x1 + batch norm) are all it has more
    projections = sum(c_in * c_out + 2 * c_out for c_in, c_out in ((64, 128), (128, 256),
                                                                   (256, 512)))
    assert _n(plain) == TV_COUNTS[18] - projections
    assert _count("plain34") == TV_COUNTS[34] - projections


PAPER_GMACS = {"resnet18": 1.8, "resnet34": 3.6, "resnet50_v1": 3.8, "resnet101_v1": 7.6,
               "resnet152_v1": 11.3}


@pytest.mark.parametrize("name", PAPER_GMACS)
def test_v1_macs_within_3_percent_of_the_paper(name: str) -> None:
    gmacs = convzoo.summary(name).total_macs / 1e9
    assert abs(gmacs - PAPER_GMACS[name]) / PAPER_GMACS[name] < 0.03


def test_v15_macs() -> None:
    got = {n: round(convzoo.summary(n).total_macs / 1e9, 2)
           for n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")}
    assert got == {"resnet18": 1.81, "resnet34": 3.66, "resnet50": 4.09, "resnet101": 7.80,
                   "resnet152": 11.51}
    # v1 and v1.5 differ only in where the bottleneck strides
    assert convzoo.summary("resnet50_v1").total_macs < convzoo.summary("resnet50").total_macs


def test_stride_placement() -> None:
    v1, v15 = convzoo.create_model("resnet50_v1"), convzoo.create_model("resnet50")
    b1, b15 = v1.stages[1][0], v15.stages[1][0]
    assert (b1.conv1.conv.stride, b1.conv2.conv.stride) == ((2, 2), (1, 1))
    assert (b15.conv1.conv.stride, b15.conv2.conv.stride) == ((1, 1), (2, 2))


@pytest.mark.parametrize("depth", TV_COUNTS)
def test_torchvision_equivalence(depth: int) -> None:
    ours = convzoo.create_model(f"resnet{depth}")
    tv = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    randomise_bn(tv)
    load_state(ours, tv.state_dict(), f"torchvision resnet{depth}")
    ours.eval(), tv.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("depth", (50, 101, 152))
def test_timm_seresnet_equivalence(depth: int) -> None:
    ours = convzoo.create_model(f"se_resnet{depth}")
    peer = timm.create_model(f"seresnet{depth}", pretrained=False)
    assert _n(ours) == _n(peer)
    se = ours.stages[3][0].se
    assert isinstance(se, SqueezeExcite) and se.fc1.out_channels == 2048 // 16
    randomise_bn(peer)
    load_state(ours, peer.state_dict(), f"timm seresnet{depth}")
    ours.eval(), peer.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), peer(x), atol=1e-5, rtol=1e-5)


def _shortcuts(name: str, option: str) -> list[type]:
    with torch.device("meta"):
        model = convzoo.create_model(name, shortcut=option)
    return [type(b.shortcut) for s in model.stages for b in s]


def test_shortcut_options() -> None:
    first = [0, 2, 4, 6]  # resnet18: the blocks where the shape changes
    a, b, c = (_shortcuts("resnet18", o) for o in "ABC")
    assert [i for i, t in enumerate(a) if t is PadShortcut] == first[1:]
    assert all(t is nn.Identity for i, t in enumerate(a) if i not in first[1:])
    assert [i for i, t in enumerate(b) if t is ConvNormAct] == first[1:]
    assert c == [ConvNormAct] * 8
    n_a, n_b, n_c = (_count("resnet18", shortcut=o) for o in "ABC")
    assert n_b == TV_COUNTS[18]
    projections = sum(i * o + 2 * o for i, o in ((64, 128), (128, 256), (256, 512)))
    identity_blocks = sum(w * w + 2 * w for w in (64, 64, 128, 256, 512))
    assert n_a == n_b - projections
    assert n_c == n_b + identity_blocks
    # bottlenecks change the width in stage 1 too: B projects there, A pads
    assert _shortcuts("resnet50", "B")[0] is ConvNormAct
    assert _shortcuts("resnet50", "A")[0] is PadShortcut
    with pytest.raises(convzoo.UserInputError, match="shortcut"):
        convzoo.create_model("resnet18", shortcut="D")


def test_option_a_subsamples_and_zero_pads() -> None:
    model = convzoo.create_model("resnet20")
    pad = model.stages[1][0].shortcut
    assert isinstance(pad, PadShortcut)
    x = torch.randn(2, 16, 32, 32)
    y = pad(x)
    assert y.shape == (2, 32, 16, 16)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert y[:, 16:].abs().sum() == 0
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def _tv_resnet18_state() -> dict[str, torch.Tensor]:
    return torchvision.models.resnet18(weights=None).state_dict()


@pytest.mark.parametrize("suffix", (".pth", ".safetensors"))
def test_file_with_1000_class_head_into_10_class_model(tmp_path, suffix: str) -> None:
    sd = _tv_resnet18_state()
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".pth":
        torch.save(sd, path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    model = convzoo.create_model("resnet18", num_classes=10, weights=str(path))
    assert "does not fit this 10-class head" in str(model.weights_report)
    assert model.head.fc.out_features == 10
    torch.testing.assert_close(model.stem.conv.weight, sd["conv1.weight"])
    assert model.class_names is None
    full = convzoo.create_model("resnet18", weights=str(path))
    torch.testing.assert_close(full.head.fc.weight, sd["fc.weight"])
    assert full.class_names == imagenet_class_names()
    from torchvision.models._meta import _IMAGENET_CATEGORIES  # read here without importing

    assert imagenet_class_names() == list(_IMAGENET_CATEGORIES)


def test_torchvision_hub_reaches_torchvision(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models._api import WeightsEnum

    sd = _tv_resnet18_state()
    calls = []

    def fake_fetch(self, *args, **kwargs):  # noqa: ANN001, ANN202 - stands in for a download
        calls.append(self)
        return sd

    monkeypatch.setattr(WeightsEnum, "get_state_dict", fake_fetch)
    model = convzoo.create_model("resnet18", weights="torchvision:IMAGENET1K_V1")
    assert calls == [torchvision.models.ResNet18_Weights.IMAGENET1K_V1]
    torch.testing.assert_close(model.head.fc.weight, sd["fc.weight"])
    assert model.class_names == list(calls[0].meta["categories"])
    with pytest.raises(convzoo.UserInputError, match="no torchvision counterpart"):
        convzoo.create_model("resnet50_v1", weights="torchvision:IMAGENET1K_V1")
    with pytest.raises(convzoo.UserInputError, match="no weights"):
        convzoo.create_model("resnet18", weights="torchvision:NO_SUCH_TAG")


def test_weight_sources() -> None:
    with torch.device("meta"):
        models = {n: convzoo.create_model(n) for n in
                  ("resnet50", "resnet50_v1", "se_resnet50", "resnet20", "plain18")}
    assert models["resnet50"].torchvision_name == "resnet50"
    assert models["se_resnet50"].weight_sources == ("timm",)
    for n in ("resnet50_v1", "resnet20", "plain18"):
        assert models[n].weight_sources == () and models[n].torchvision_name is None


def test_cli_paper_table(capsys: pytest.CaptureFixture) -> None:
    assert main(["summary", "resnet50_v1", "--convention", "paper", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = data["rows"]
    assert [r["layer name"] for r in rows[:5]] == ["conv1", "conv2_x", "conv3_x", "conv4_x",
                                                   "conv5_x"]
    assert [r["output size"] for r in rows[:5]] == ["112x112", "56x56", "28x28", "14x14", "7x7"]
    assert rows[1]["50-layer"].endswith("[1x1, 64; 3x3, 64; 1x1, 256] x3")
    assert rows[4]["50-layer"] == "[1x1, 512; 3x3, 512; 1x1, 2048] x3"
    assert data["totals"]["50-layer"] == "paper FLOPs: 3.8x10^9"
    assert data["totals"]["MACs"] == "3.86G"
