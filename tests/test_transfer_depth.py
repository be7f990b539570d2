"""The transfer-depth experiment on tiny settings: one row per depth and data set, the weight
changes per group, and frozen groups that do not move."""

import json

import pytest
import torch

from convzoo import create_model
from convzoo.data.catalog import fake
from convzoo.errors import UserInputError
from convzoo.experiments.transfer_depth import (
    body_groups,
    relative_change,
    run_transfer_depth,
    snapshot,
)


def test_relative_change_per_group():
    model = create_model("lenet5_modern")
    before = snapshot(model)
    with torch.no_grad():
        for p in model.group_modules()[body_groups(model)[-1]].parameters():
            p.mul_(1.5)  # the last group moves by half its norm; nothing else moves
    rows = {r["group"]: r["relative_change"] for r in relative_change(before, model)}
    last = body_groups(model)[-1]
    assert rows[last] == pytest.approx(0.5, rel=1e-5)
    assert all(v == 0 for g, v in rows.items() if g != last)


def test_one_row_per_depth_and_the_weight_changes(tmp_path):
    near = fake((1, 28, 28), 48, 3, seed=1)
    far = fake((1, 28, 28), 48, 4, seed=2)
    groups = body_groups(create_model("lenet5_modern"))
    res = run_transfer_depth("lenet5_modern", [near, far], tmp_path, depths=[0, 1],
                             labels_per_class=6, epochs=1, batch_size=8, device="cpu",
                             log=lambda s: None)
    full = len(groups)
    assert res["depths"] == [0, 1, full]  # the full depth is always run
    assert [(r["data"], r["depth"]) for r in res["rows"]] == [
        (d.name, k) for d in (near, far) for k in (0, 1, full)]
    assert all(0 <= r["top1"] <= 1 for r in res["rows"])
    by = {(r["data"], r["depth"]): r for r in res["rows"]}
    # the probe trains only the new last layer; each depth more trains more
    assert by[(near.name, 0)]["trainable_params"] < by[(near.name, 1)]["trainable_params"] \
        < by[(near.name, full)]["trainable_params"]
    change = [c for c in res["weight_change"] if c["data"] == far.name]
    assert [c["group"] for c in change][:full] == groups
    assert all(c["relative_change"] > 0 for c in change)  # full fine-tuning moves every group
    saved = json.loads((tmp_path / "transfer_depth.json").read_text())
    assert saved["rows"] == res["rows"]
    assert (tmp_path / "transfer_depth.md").read_text().count("|") > 10
    # run again with fewer depths: every part is loaded, nothing trains again
    said: list[str] = []
    again = run_transfer_depth("lenet5_modern", [near, far], tmp_path, depths=[0],
                               labels_per_class=6, epochs=1, batch_size=8, device="cpu",
                               log=said.append)
    assert sum("finished in an earlier run" in s for s in said) == 4
    assert again["rows"] == [r for r in res["rows"] if r["depth"] != 1]
    assert again["weight_change"] == res["weight_change"]
    with pytest.raises(UserInputError):
        run_transfer_depth("lenet5_modern", [near], tmp_path, depths=[full + 1], epochs=1,
                           device="cpu", log=lambda s: None)


def test_recalibrate_bn_sets_the_exact_statistics_of_the_trained_norms():
    from torch import nn

    from convzoo.experiments.transfer_depth import recalibrate_bn, trained_norms

    torch.manual_seed(0)
    frozen, trained = nn.BatchNorm2d(2, momentum=0.01), nn.BatchNorm2d(2, momentum=0.01)
    for p in frozen.parameters():
        p.requires_grad_(False)
    model = nn.Sequential(frozen, nn.Dropout(0.5), trained)
    assert trained_norms(model) == [trained]
    x = torch.randn(40, 2, 3, 3) * 3 + 5
    batches = [(x[s:s + 10], None) for s in range(0, 40, 10)]
    assert recalibrate_bn(model, batches) == 1
    # frozen keeps its statistics; trained gets the mean of its input's batch statistics
    assert torch.equal(frozen.running_mean, torch.zeros(2))
    with torch.no_grad():
        seen = frozen(x)  # eval mode: the dropout is off too
    want_mean = seen.mean((0, 2, 3))
    want_var = torch.stack([seen[s:s + 10].var((0, 2, 3)) for s in range(0, 40, 10)]).mean(0)
    torch.testing.assert_close(trained.running_mean, want_mean, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(trained.running_var, want_var, rtol=1e-3, atol=1e-3)
    assert trained.momentum == 0.01 and not model.training
