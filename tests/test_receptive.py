"""Receptive fields traced through the real modules, against values worked out by hand here."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo import UserInputError
from convzoo.analysis.receptive import profile_with_fields, receptive_fields, trace_fields


def by_hand(layers: list[tuple[int, int, int]]) -> list[tuple[int, int, float]]:
    """(kernel, stride, padding) per layer -> (field, jump, start) per layer, step by step."""
    r, j, start, out = 1, 1, 0.0, []
    for k, s, p in layers:
        start += ((k - 1) / 2 - p) * j
        r += (k - 1) * j
        j *= s
        out.append((r, j, start))
    return out


def fields(name: str, **kw) -> dict:
    return {row.name: row for row in receptive_fields(name, **kw)}


def test_lenet5() -> None:
    rows = fields("lenet5")
    c1, s2, c3, s4, c5 = by_hand([(5, 1, 0), (2, 2, 0), (5, 1, 0), (2, 2, 0), (5, 1, 0)])
    for name, want in (("stem.c1", c1), ("stem.s2", s2), ("stages.0.c3", c3),
                       ("stages.0.s4", s4), ("stages.1.c5", c5)):
        assert rows[name].rf == (want[0], want[0]), name
        assert rows[name].jump == (want[1], want[1]), name
        assert rows[name].start == (want[2], want[2]), name
    assert c5[0] == 32  # C5 sees the whole 32x32 input
    assert rows["stages.1.c5"].global_field


def test_alexnet_as_published() -> None:
    rows = fields("alexnet")
    want = by_hand([(11, 4, 0), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1),
                    (3, 1, 1), (3, 2, 0)])
    names = ["stem.conv", "stem.pool", "stages.0.conv", "stages.0.pool", "stages.1.conv",
             "stages.2.conv", "stages.3.conv", "stages.3.pool"]
    assert [want[0][0], want[1][0]] == [11, 19]  # CONV1 11, POOL1 19: the lecture's numbers
    for name, (r, j, start) in zip(names, want):
        assert rows[name].rf == (r, r), name
        assert rows[name].jump == (j, j), name
        assert rows[name].start == (start, start), name
    # LRN and ReLU are pointwise: the field after them is the convolution's
    assert rows["stem.lrn"].rf == rows["stem.conv"].rf


def test_vgg16() -> None:
    rows = fields("vgg16")
    layers = []
    for convs in (2, 2, 3, 3, 3):
        layers += [(3, 1, 1)] * convs + [(2, 2, 0)]
    want = by_hand(layers)
    assert rows["stages.4.2.conv"].rf[0] == want[-2][0] == 196  # conv5_3
    assert rows["stages.4.3"].rf[0] == want[-1][0] == 212  # pool5
    assert rows["stages.4.3"].jump[0] == want[-1][1] == 32
    assert rows["stages.4.3"].start[0] == want[-1][2]
    # the first fully connected layer sees all 7x7 pool5 positions: 212 + 6 * 32
    assert rows["head.pre.fc6"].rf[0] == 212 + 6 * 32
    assert rows["head.pre.fc6"].global_field


def test_resnet18_last_stage_follows_main_path_and_shortcut() -> None:
    rows = fields("resnet18")
    stem = by_hand([(7, 2, 3), (3, 2, 1)])
    r, j = stem[-1][0], stem[-1][1]
    for stage, stride in enumerate((1, 2, 2, 2)):
        into = (r, j)
        for block in range(2):
            s = stride if block == 0 else 1
            r += 2 * j  # conv1 3x3, stride s
            j *= s
            r += 2 * j  # conv2 3x3
        if stage == 3:
            r_in, j_in = into
    # main path of stages.3.0: two 3x3 (the first strided); the shortcut: a 1x1/2 convolution
    assert rows["stages.3.0.conv2"].rf[0] == r_in + 2 * j_in + 2 * 2 * j_in
    assert rows["stages.3.0.shortcut"].rf[0] == r_in
    assert rows["stages.3.0.shortcut"].jump[0] == 2 * j_in
    assert rows["stages.3.0"].rf[0] == r_in + 6 * j_in
    assert rows["stages.3.0"].branches
    assert rows["stages.3"].rf[0] == r == 435


def test_shortcut_wider_than_main_path_sets_the_field() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.main = nn.Conv2d(2, 2, 1)
            self.shortcut = nn.AvgPool2d(5, 1, 2)

        def forward(self, x):
            return self.main(x) + self.shortcut(x)

    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), Block())
    rows = {r.name: r for r in receptive_fields(model, (1, 16, 16))}
    assert rows["1.main"].rf == (3, 3)
    assert rows["1.shortcut"].rf == (7, 7)
    assert rows["1"].rf == (7, 7) and rows["1"].branches
    assert rows["1"].start == (0, 0)


def test_cifar_shortcuts_add_no_width() -> None:
    # option-A shortcuts subsample by slicing and pad channels: the field is the plain net's
    res, plain = trace_fields("resnet20"), trace_fields("plain20")
    assert res.output.rf == plain.output.rf
    rows = {r.name: r for r in res.rows}
    assert rows["stages.2.0.shortcut"].jump == (4, 4)
    assert rows["stages.2.0.shortcut"].rf == rows["stages.1"].rf


def test_googlenet_inception_takes_its_widest_branch() -> None:
    rows = fields("googlenet")
    stem = by_hand([(7, 2, 3), (3, 2, 0), (1, 1, 0), (3, 1, 1), (3, 2, 0)])
    r, j = stem[-1][0], stem[-1][1]
    assert rows["stem"].rf[0] == r
    # branches: 1x1 (r), 1x1->3x3 (r+2j), 1x1->5x5 (r+4j), 3x3 pool->1x1 (r+2j)
    assert rows["stages.0.inception3a"].rf[0] == r + 4 * j
    assert rows["stages.0.inception3a"].branches


def test_squeeze_excitation_gate_does_not_widen_the_field() -> None:
    rows = fields("efficientnet_b0")
    first = rows["stages.0.0"]  # depthwise 3x3 + SE + 1x1 after the 3x3/2 stem
    assert first.rf == (7, 7)
    assert not first.global_field


def test_depth_counts_weight_layers_on_the_longest_path() -> None:
    assert trace_fields("vgg16").depth == 16
    assert trace_fields("resnet18").depth == 18  # the projection shortcuts are side paths
    assert trace_fields("googlenet").depth == 22  # the paper: "22 layers deep"


def test_rows_carry_the_profile_names() -> None:
    prof, trace = profile_with_fields("resnet18")
    names = {r.name for r in trace.rows}
    ran = [r.name for r in prof.layers if r.output_shape]
    assert ran and all(n in names for n in ran)
    assert trace.depth == 18


def test_real_weights_are_left_alone() -> None:
    model = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2))
    before = model[0].weight.detach().clone()
    rows = receptive_fields(model, (1, 8, 8))
    assert [r.rf for r in rows][:2] == [(3, 3), (4, 4)]
    assert torch.equal(model[0].weight, before)


def test_bad_input_size() -> None:
    with pytest.raises(UserInputError):
        receptive_fields("vgg16", (3, 0, 224))
    with pytest.raises(UserInputError, match="cannot take"):
        receptive_fields("vgg16", (3, 8, 8))


def test_adaptive_pooling_that_does_not_divide_its_input() -> None:
    # 32 -> 8 (4x4/4), then 8 -> 7: bins of 2 maps positions starting one position apart, so
    # the output's neighbours are 4 input pixels apart (8/7 of a position would be 4.57) and
    # each sees 4 + 4 = 8 pixels
    model = nn.Sequential(nn.Conv2d(1, 1, 4, 4), nn.AdaptiveAvgPool2d(7))
    rows = receptive_fields(model, (1, 32, 32))
    assert rows[-1].output_shape == (1, 1, 7, 7)
    assert rows[-1].rf == (8, 8) and max(rows[-1].rf) <= 32
    assert rows[-1].jump == (4, 4)
    # 10 -> 4: bins of 3 starting at 0, 2, 5, 7: (10 - 3) / 3 positions apart on average
    rows = receptive_fields(nn.Sequential(nn.AdaptiveMaxPool2d(4)), (1, 10, 10))
    assert rows[-1].rf == (3, 3) and rows[-1].jump == pytest.approx((7 / 3, 7 / 3))
