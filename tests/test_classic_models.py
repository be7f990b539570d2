"""LeNet-5, AlexNet and VGG: the papers' counts, the lecture's table, torchvision equivalence."""

from __future__ import annotations

import pytest
import torch
import torchvision

import convzoo
from convzoo.analysis.paper import paper_table
from convzoo.weights import load_state
from peer_checks import randomise_bn

EXACT_PARAMS = {
    "lenet5": 60_000, "lenet5_modern": 61_706,
    "alexnet": 60_965_224, "alexnet_owt": 61_100_840,
    "vgg11": 132_863_336, "vgg11_lrn": 132_863_336, "vgg13": 133_047_848,
    "vgg16_c": 133_638_952, "vgg16": 138_357_544, "vgg19": 143_667_240,
}


@pytest.mark.parametrize(("name", "count"), EXACT_PARAMS.items())
def test_exact_parameter_counts(name: str, count: int) -> None:
    assert convzoo.summary(name).trainable_params == count


def test_lenet5_layers_as_published() -> None:
    model = convzoo.create_model("lenet5")
    per_layer = {
        "C1": model.stem.c1, "S2": model.stem.s2, "C3": model.stages[0].c3,
        "S4": model.stages[0].s4, "C5": model.stages[1].c5, "F6": model.head.pre.f6,
    }
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in per_layer.items()}
    assert counts == {"C1": 156, "S2": 12, "C3": 1_516, "S4": 32, "C5": 48_120, "F6": 10_164}
    # the RBF output's centres are fixed
    assert not list(model.head.fc.parameters())
    assert set(model.head.fc.centres.unique().tolist()) == {-1.0, 1.0}


def test_lenet5_paper_table_parameters_and_connections() -> None:
    model = convzoo.create_model("lenet5")
    table = paper_table(model, convzoo.summary(model))
    for name, _maps, params, paper_params, conns, paper_conns in table.rows:
        assert params == paper_params and conns == paper_conns, name
    assert table.rows[2][:2] == ["C3", "16@10x10"]
    assert table.totals[2] == "60,000"


def test_lenet5_c3_follows_table_one() -> None:
    model = convzoo.create_model("lenet5").eval()
    c3 = model.stages[0].c3
    x = torch.zeros(1, 6, 14, 14)
    base = c3(x)
    # perturbing S2's map 0 may only change the C3 maps that Table I wires to it
    x[:, 0] += 1.0
    changed = (c3(x) - base).abs().flatten(2).amax(-1)[0] > 0
    wired = torch.tensor([0 in row for row in c3.table])
    assert torch.equal(changed, wired)


def test_alexnet_conv1_shape_and_weights() -> None:
    prof = convzoo.summary("alexnet")
    conv1 = prof.layers[0]
    assert conv1.output_shape == (1, 96, 55, 55)
    assert conv1.weights == 34_848
    pool1 = next(r for r in prof.layers if r.type == "MaxPool2d")
    assert pool1.output_shape[-1] == 27
    model = convzoo.create_model("alexnet")
    groups = [m.groups for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert groups == [1, 2, 1, 2, 2]


VGG16_LECTURE = [  # seed 003: layer, output, memory, weights without biases
    ("INPUT", "224x224x3", 150_528, 0),
    ("CONV3-64", "224x224x64", 3_211_264, 1_728), ("CONV3-64", "224x224x64", 3_211_264, 36_864),
    ("POOL2", "112x112x64", 802_816, 0),
    ("CONV3-128", "112x112x128", 1_605_632, 73_728),
    ("CONV3-128", "112x112x128", 1_605_632, 147_456),
    ("POOL2", "56x56x128", 401_408, 0),
    *[("CONV3-256", "56x56x256", 802_816, w) for w in (294_912, 589_824, 589_824)],
    ("POOL2", "28x28x256", 200_704, 0),
    *[("CONV3-512", "28x28x512", 401_408, w) for w in (1_179_648, 2_359_296, 2_359_296)],
    ("POOL2", "14x14x512", 100_352, 0),
    *[("CONV3-512", "14x14x512", 100_352, 2_359_296)] * 3,
    ("POOL2", "7x7x512", 25_088, 0),
    ("FC", "1x1x4096", 4_096, 102_760_448), ("FC", "1x1x4096", 4_096, 16_777_216),
    ("FC", "1x1x1000", 1_000, 4_096_000),
]


def test_vgg16_lecture_table_row_by_row() -> None:
    model = convzoo.create_model("vgg16")
    table = paper_table(model, convzoo.summary(model))
    got = [(r[0], r[1], int(r[2].replace(",", "")), int(r[3].split("=")[-1].replace(",", "")))
           for r in table.rows]
    assert got == VGG16_LECTURE
    assert table.rows[-3][3].startswith("7*7*512*4096")
    total_mem = sum(r[2] for r in VGG16_LECTURE)
    assert table.totals[2] == f"{total_mem:,}"
    assert round(total_mem / 1e6, 1) == 15.2
    assert any("24M" in n for n in table.notes)


def test_vgg_macs_match_numbers_md() -> None:
    macs = {n: convzoo.summary(n).total_macs / 1e9 for n in ("vgg11", "vgg13", "vgg16", "vgg19")}
    assert [round(v, 2) for v in macs.values()] == [7.61, 11.31, 15.47, 19.63]
    assert round(convzoo.summary("alexnet_owt").total_macs / 1e9, 3) == 0.714


TORCHVISION_PAIRS = [("alexnet_owt", "alexnet"), ("vgg11", "vgg11"), ("vgg13", "vgg13"),
                     ("vgg16", "vgg16"), ("vgg19", "vgg19"), ("vgg11_bn", "vgg11_bn"),
                     ("vgg13_bn", "vgg13_bn"), ("vgg16_bn", "vgg16_bn"),
                     ("vgg19_bn", "vgg19_bn")]


@pytest.mark.parametrize(("ours", "theirs"), TORCHVISION_PAIRS)
def test_torchvision_equivalence(ours: str, theirs: str) -> None:
    ref = getattr(torchvision.models, theirs)(weights=None).eval()
    model = convzoo.create_model(ours).eval()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())
    load_state(model, ref.state_dict(), theirs)
    if any(isinstance(m, torch.nn.BatchNorm2d) for m in ref.modules()):
        randomise_bn(ref)
        load_state(model, ref.state_dict(), theirs)
    x = torch.randn(2, 3, 112, 112)  # adaptive pooling lets both nets take a smaller input
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), atol=1e-5, rtol=1e-5)


def test_paper_variants_refuse_torchvision_weights() -> None:
    ref = torchvision.models.alexnet(weights=None)
    with pytest.raises(convzoo.UserInputError, match="do not fit alexnet"):
        load_state(convzoo.create_model("alexnet"), ref.state_dict(), "alexnet.pth")


def test_too_small_input_names_the_layer() -> None:
    with pytest.raises(convzoo.UserInputError, match=r"too small for alexnet.*stages\.\d\.pool"):
        convzoo.summary("alexnet", (3, 32, 32))
    with pytest.raises(convzoo.UserInputError, match=r"too small for vgg16.*stages\.4"):
        convzoo.summary("vgg16", (3, 16, 16))


def test_summary_of_a_real_model_leaves_its_weights() -> None:
    model = convzoo.create_model("lenet5_modern")
    before = [p.clone() for p in model.parameters()]
    prof = convzoo.summary(model, batch_size=4)
    assert prof.layers[0].output_shape == (4, 6, 28, 28)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert prof.activation_bytes(torch.bfloat16) * 2 == prof.activation_bytes(torch.float32)
    assert prof.flops == 2 * prof.total_macs


def test_unknown_named_weights_source() -> None:
    with pytest.raises(convzoo.UserInputError, match="no weights named 'imagenet'"):
        convzoo.create_model("vgg11", weights="imagenet")
    with pytest.raises(convzoo.UserInputError, match="does not exist"):
        convzoo.create_model("vgg11", weights="missing.pth")


@pytest.mark.parametrize("size", (5, 4))
def test_lrn_is_torch_local_response_norm_bit_for_bit(size: int) -> None:
    from convzoo.layers import LRN

    ours = LRN(size=size, alpha=1e-4, beta=0.75, k=2.0)
    theirs = torch.nn.LocalResponseNorm(size, alpha=1e-4 * size, beta=0.75, k=2.0)
    for shape in ((2, 16, 5, 7), (1, 3, 4, 4)):  # 3 channels: fewer than the window
        x = torch.randn(*shape) * 4
        assert torch.equal(ours(x), theirs(x))


@pytest.mark.filterwarnings("ignore")  # the legacy exporter's deprecation, tracing
def test_lrn_then_adaptive_pool_exports_with_the_legacy_onnx_exporter(tmp_path) -> None:
    # F.pad inside torch's LRN hid the map's size from the legacy exporter, so vgg11_lrn's
    # adaptive pool before the classifier could not be written ("input size not accessible")
    onnx = pytest.importorskip("onnx")
    from convzoo.layers import LRN

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), LRN(), torch.nn.AdaptiveAvgPool2d(2))
    path = tmp_path / "lrn.onnx"
    torch.onnx.export(net.eval(), (torch.randn(1, 3, 10, 10),), str(path), dynamo=False)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "AveragePool" in ops and "Pad" not in ops
