"""Ensembles: identical members change nothing; different ones average their softmaxes."""

import copy

import pytest
import torch
from torch import nn

from convzoo.data.catalog import fake
from convzoo.errors import UserInputError
from convzoo.evaluation.ensemble import evaluate_ensemble
from convzoo.runs.source import Source


class Small(nn.Module):
    default_input_size = (1, 8, 8)

    def __init__(self, seed: int, k: int = 4) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.num_classes = k
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(1), nn.Linear(4, k))

    def forward(self, x):
        return self.net(x)


def member(model: nn.Module, name: str, classes, mean=(0.5,), std=(0.25,)) -> Source:
    return Source(model.eval(), name, preprocess=lambda x: x, class_names=list(classes),
                  input_size=(1, 8, 8), mean=mean, std=std)


@pytest.fixture(scope="module")
def data():
    return fake((1, 8, 8), 200, 4, seed=1)


def test_two_identical_members_equal_each(data):
    a = Small(0)
    res = evaluate_ensemble([member(a, "a", data.classes),
                             member(copy.deepcopy(a), "a2", data.classes)],
                            data.test, data)
    assert res.ensemble.top1 == res.members[0].top1 == res.members[1].top1
    assert res.ensemble.top5 == res.members[0].top5
    assert res.ensemble.loss == pytest.approx(res.members[0].loss, rel=1e-6)
    assert torch.equal(res.ensemble.confusion, res.members[0].confusion)


def test_different_members_average_their_softmaxes(data):
    a, b = Small(0), Small(1)
    # the second member normalises differently: each sees the images as its weights expect
    res = evaluate_ensemble([member(a, "a", data.classes),
                             member(b, "b", data.classes, mean=(0.4,), std=(0.3,))],
                            data.test, data)
    x = data.test.images.float() / 255
    y = data.test.labels
    with torch.no_grad():
        pa = a((x - 0.5) / 0.25).softmax(1)
        pb = b((x - 0.4) / 0.3).softmax(1)
    mean = (pa + pb) / 2
    for r, p in [(res.members[0], pa), (res.members[1], pb), (res.ensemble, mean)]:
        assert r.n == len(y)
        assert r.top1 == pytest.approx(float((p.argmax(1) == y).double().mean()))
        assert r.loss == pytest.approx(float(-p[torch.arange(len(y)), y].log().mean()),
                                       rel=1e-4)
    assert res.ensemble.loss != pytest.approx(res.members[0].loss, rel=1e-3)
    d = res.to_dict()
    assert [m["name"] for m in d["members"]] == ["a", "b"] and "top1" in d["ensemble"]
    assert "ensemble of 2" in res.table().render("markdown")


def test_members_must_share_the_classes(data):
    other = [*data.classes[:-1], "something else"]
    with pytest.raises(UserInputError, match="share the class names"):
        evaluate_ensemble([member(Small(0), "a", data.classes), member(Small(1), "b", other)],
                          data.test, data)
    with pytest.raises(UserInputError, match="another order"):
        evaluate_ensemble([member(Small(0), "a", data.classes[::-1])], data.test, data)
