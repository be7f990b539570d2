"""Test-time methods: the views' shapes, ten-crop as the mean of ten independent passes, dense
evaluation against the ordinary forward pass."""

import pytest
import torch
from torch import nn

from convzoo.errors import UserInputError
from convzoo.evaluation.score import method_probs, score_batches
from convzoo.evaluation.tta import (
    dense_model,
    multiscale_views,
    parse_method,
    pools_globally,
    ten_crops,
)
from convzoo.models.vgg import VGG, Column, Conv


class TinyPooled(nn.Module):
    """A classifier with a global pool, so it takes any image size."""

    def __init__(self, k: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(6, k))

    def forward(self, x):
        return self.head(self.features(x))


def tiny_vgg(classes: int = 5) -> VGG:
    torch.manual_seed(0)
    # the real VGG class and head, with a column of five narrow blocks (fast at 224x224)
    model = VGG(Column("tiny", ((Conv(3, 4),),) * 5), num_classes=classes, hidden=16)
    return model.eval()


def test_parse_method():
    assert parse_method("multiscale:256,384,512").scales == (256, 384, 512)
    assert parse_method("Ten-Crop").kind == "ten-crop"
    assert parse_method("center").kind == "centre"
    assert parse_method("dense").scales == ()
    for bad in ("twelve-crop", "multiscale", "multiscale:a,b", "flip:3"):
        with pytest.raises(UserInputError):
            parse_method(bad)


def test_ten_crop_shapes_and_positions():
    x = torch.arange(2 * 3 * 8 * 10, dtype=torch.float32).view(2, 3, 8, 10)
    crops = ten_crops(x, 6)
    assert crops.shape == (10, 2, 3, 6, 6)
    assert torch.equal(crops[0], x[..., :6, :6])  # top left
    assert torch.equal(crops[3], x[..., 2:, 4:])  # bottom right
    assert torch.equal(crops[4], x[..., 1:7, 2:8])  # centre
    assert torch.equal(crops[5], x[..., :6, :6].flip(-1))  # mirrored top left
    with pytest.raises(UserInputError):
        ten_crops(x, 9)


def test_multiscale_shapes():
    x = torch.rand(2, 3, 20, 30)
    whole = multiscale_views(x, [10, 16, 24])
    assert [tuple(v.shape[-2:]) for v in whole] == [(10, 15), (16, 24), (24, 36)]
    cropped = multiscale_views(x, [10, 16, 24], crop=10)
    assert all(v.shape == (2, 3, 10, 10) for v in cropped)


def test_ten_crop_is_the_mean_of_ten_independent_passes():
    torch.manual_seed(1)
    model = TinyPooled().eval()
    x = torch.randn(3, 3, 12, 12)
    got = method_probs(model, x, "ten-crop", 8)
    views = [x[..., :8, :8], x[..., :8, 4:], x[..., 4:, :8], x[..., 4:, 4:], x[..., 2:10, 2:10]]
    views += [v.flip(-1) for v in views]
    with torch.no_grad():
        want = sum(model(v).softmax(1) for v in views) / 10
    assert got.shape == (3, 4)
    torch.testing.assert_close(got, want)
    # the mirrors matter: it is not the mean of the five unmirrored crops
    with torch.no_grad():
        five = sum(model(v).softmax(1) for v in views[:5]) / 5
    assert not torch.allclose(got, five)


def test_multiscale_whole_image_for_a_global_pool():
    torch.manual_seed(2)
    model = TinyPooled().eval()
    assert pools_globally(model)
    assert not pools_globally(tiny_vgg())  # VGG pools to 7x7, not to one vector
    x = torch.randn(2, 3, 16, 16)
    got = method_probs(model, x, "multiscale:8,12,16", 8)
    with torch.no_grad():
        want = sum(model(nn.functional.interpolate(x, size=(q, q), mode="bilinear",
                                                   antialias=q < 16)).softmax(1)
                   for q in (8, 12, 16)) / 3
    torch.testing.assert_close(got, want)


def test_dense_at_the_training_size_equals_the_forward_pass():
    model = tiny_vgg()
    dense = dense_model(model)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        scores = dense(x)
        assert scores.shape == (2, 5, 1, 1)
        torch.testing.assert_close(scores.flatten(1), model(x), rtol=1e-4, atol=1e-5)
        # a larger image gives a map of scores: (256/32 - 7) + 1 = 2 positions per side
        assert dense(torch.randn(1, 3, 256, 256)).shape == (1, 5, 2, 2)
    got = method_probs(model, x, "dense", 224)
    torch.testing.assert_close(got, model(x).softmax(1), rtol=1e-4, atol=1e-5)


def test_dense_refuses_a_global_pool_head():
    with pytest.raises(UserInputError):
        dense_model(TinyPooled())


def test_evaluate_tta_counts():
    torch.manual_seed(3)
    model = TinyPooled(k=3).eval()
    x = torch.randn(6, 3, 10, 10)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    res = score_batches(model, [(x[:4], y[:4]), (x[4:], y[4:])], 3, "flip", crop=8)
    p = method_probs(model, x, "flip", 8)
    assert res.n == 6
    assert res.top1 == pytest.approx(float((p.argmax(1) == y).float().mean()))
    assert res.top5 == 1.0  # k = 3 classes: every label is in the top 3
    assert res.loss == pytest.approx(float(-p[torch.arange(6), y].log().mean()), rel=1e-5)
