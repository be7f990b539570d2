"""Fine-tuning modes on every registered family: groups, rates, freezing, batch-norm stats."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import convzoo
from convzoo.train import freeze

ALL = convzoo.list_models()


@pytest.mark.parametrize("name", ALL)
def test_modes_on_every_model(name: str) -> None:
    with torch.device("meta"):
        model = convzoo.create_model(name)
    order = list(model.group_modules())
    head_at = order.index("head")
    n_body = head_at

    lin = freeze.plan(model, "linear", lr=0.1)
    trainable = [p for p in lin if p.trainable]
    assert [p.name for p in trainable] == ["head"] and trainable[0].lr == 0.1
    assert trainable[0].params == sum(t.numel() for t in model.head.fc.parameters())
    assert sum(p.params for p in lin) == sum(t.numel() for t in model.parameters())

    part = freeze.plan(model, "partial", lr=0.1, train_last=2, lr_decay=0.5)
    trains = [p.name for p in part if p.trainable]
    assert trains == order[max(0, n_body - 2):]
    rates = {p.name: p.lr for p in part}
    if n_body >= 2:
        assert rates[order[n_body - 1]] == pytest.approx(0.05)
        assert rates[order[n_body - 2]] == pytest.approx(0.025)

    full = freeze.plan(model, "full", lr=0.1, lr_decay=0.1)
    assert all(p.trainable for p in full)
    body_rates = [p.lr for p in full[:n_body]]
    assert body_rates == sorted(body_rates)  # smaller steps nearer the input
    assert sum(p.params for p in full) == sum(t.numel() for t in model.parameters())


def test_bad_mode_and_train_last() -> None:
    model = convzoo.create_model("lenet5_modern")
    with pytest.raises(convzoo.UserInputError, match="unknown fine-tuning mode"):
        freeze.plan(model, "half", lr=0.1)
    with pytest.raises(convzoo.UserInputError, match="--train-last"):
        freeze.plan(model, "partial", lr=0.1, train_last=9)


def _bn_model() -> nn.Module:
    return convzoo.create_model("vgg11_bn", num_classes=3)


def test_linear_mode_freezes_backbone_and_bn_statistics() -> None:
    model = _bn_model()
    groups = freeze.apply(freeze.plan(model, "linear", lr=0.01))
    opt = torch.optim.SGD(groups, lr=0.01, momentum=0.9)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    assert not model.stages[0][0].bn.training and model.head.training
    x = torch.randn(4, 3, 32, 32)
    for _ in range(2):
        opt.zero_grad()
        model(x).logsumexp(1).mean().backward()
        opt.step()
    after = model.state_dict()
    for k, v in before.items():
        if k.startswith("head.fc."):
            assert not torch.equal(v, after[k]), k
        else:
            assert torch.equal(v, after[k]), f"{k} moved in linear mode"
    assert all(p.grad is None for p in model.stages.parameters())


def test_partial_mode_trains_only_the_last_stages() -> None:
    model = _bn_model()
    plans = freeze.plan(model, "partial", lr=0.01, train_last=1, lr_decay=0.1)
    opt = torch.optim.SGD(freeze.apply(plans), lr=0.01)
    assert {g["name"]: g["lr"] for g in opt.param_groups} == {
        "stage5": pytest.approx(0.001), "head": 0.01}
    frozen_before = [p.clone() for p in model.stages[3].parameters()]
    live_before = [p.clone() for p in model.stages[4].parameters()]
    model.train()
    opt.zero_grad()
    model(torch.randn(2, 3, 32, 32)).logsumexp(1).mean().backward()
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(frozen_before, model.stages[3].parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(live_before, model.stages[4].parameters()))
    freeze.apply(freeze.plan(model, "full", lr=0.01))
    model.train()
    assert model.stages[0][0].bn.training
    assert all(p.requires_grad for p in model.parameters())


def test_plan_table_lists_every_group() -> None:
    model = convzoo.create_model("lenet5_modern")
    table = freeze.plan_table(freeze.plan(model, "partial", lr=0.1, train_last=1))
    assert [r[0] for r in table.rows] == ["stem", "stage1", "stage2", "head"]
    assert [r[3] for r in table.rows] == ["frozen", "frozen", "trains", "trains"]
