"""best/ is chosen on a validation split held out from the training data, never on the test
split; a tie keeps the later epoch; without a validation split there is no best/."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from convzoo import registry
from convzoo.data.catalog import ArraySplit, fake
from convzoo.models.base import ClassifierHead, ConvNet, pool_flatten
from convzoo.runs.checkpoint import load_checkpoint
from convzoo.runs.source import checkpoint_line
from convzoo.train import TrainConfig, fit


class Plain(ConvNet):
    """No batch norm and no dropout: with a vanishing rate its outputs never change."""

    default_input_size = (1, 16, 16)

    def __init__(self, num_classes: int = 3, in_channels: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 8, 3, 2, 1), nn.ReLU())
        self.stages = nn.ModuleList([nn.Identity()])
        self.head = ClassifierHead(pool_flatten(), 8, num_classes, 0.0)


@pytest.fixture
def plain(monkeypatch: pytest.MonkeyPatch) -> str:
    registry._ensure_loaded()
    monkeypatch.setitem(registry._REGISTRY, "plain_test", registry.ModelEntry("plain_test", Plain))
    return "plain_test"


def _cfg(out: Path, model: str, **kw) -> TrainConfig:
    base = dict(model=model, data="fake:1x16x16:120:3", epochs=3, batch_size=16, lr=0.05,
                device="cpu", out=str(out), tensorboard=False, plots=False)
    return TrainConfig(**{**base, **kw})


def test_a_changed_test_split_changes_nothing_but_the_test_score(plain: str,
                                                                 tmp_path: Path) -> None:
    ds = fake((1, 16, 16), 120, 3, seed=0)
    t = ds.test
    flipped = dataclasses.replace(ds, test=ArraySplit(255 - t.images, (t.labels + 1) % 3),
                                  train=ds.train, mean=ds.mean, std=ds.std)
    a = fit(_cfg(tmp_path / "a", plain), data=ds)
    b = fit(_cfg(tmp_path / "b", plain), data=flipped)
    assert a["selection"]["split"] == "val" and a["selection"]["images"] == 12
    assert a["test"] != b["test"]  # the test split did change
    ha = load_checkpoint(tmp_path / "a", prefer="last").meta["history"]
    hb = load_checkpoint(tmp_path / "b", prefer="last").meta["history"]
    assert [r["val_top1"] for r in ha] == [r["val_top1"] for r in hb]
    assert a["best_epoch"] == b["best_epoch"] and a["best_top1"] == b["best_top1"]
    wa = load_checkpoint(tmp_path / "a").model_state
    wb = load_checkpoint(tmp_path / "b").model_state
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_tie_keeps_the_later_epoch(plain: str, tmp_path: Path) -> None:
    s = fit(_cfg(tmp_path / "run", plain, lr=1e-30, momentum=0.0, weight_decay=0.0))
    history = load_checkpoint(tmp_path / "run", prefer="last").meta["history"]
    assert len({r["val_top1"] for r in history}) == 1  # the same score every epoch
    assert s["best_epoch"] == 3
    best = load_checkpoint(tmp_path / "run")
    assert best.path.name == "best" and best.meta["epoch"] == 3
    assert "best validation top-1" in checkpoint_line(best)


def test_without_a_validation_split_there_is_no_best(plain: str, tmp_path: Path) -> None:
    s = fit(_cfg(tmp_path / "run", plain, epochs=1, val_split=0.0))
    assert s["best_epoch"] is None and s["selection"]["split"] is None
    assert not (tmp_path / "run" / "best").exists()
    line = checkpoint_line(load_checkpoint(tmp_path / "run"))
    assert "last/" in line and "no best/" in line and "--val-split 0" in line


class Counting(Plain):
    """Counts the images it trains on."""

    seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            Counting.seen += x.shape[0]
        return super().forward(x)


def test_a_small_fine_tune_trains_on_every_image(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    registry._ensure_loaded()
    monkeypatch.setitem(registry._REGISTRY, "counting_test",
                        registry.ModelEntry("counting_test", Counting))
    Counting.seen = 0
    s = fit(_cfg(tmp_path / "run", "counting_test", data="fake:1x16x16:96:3", batch_size=64,
                 epochs=2, val_split=0.0, finetune="linear"))
    assert Counting.seen == 2 * 96 and s["steps"] == 2 * 2


def test_no_top_k_figure_where_k_covers_every_class(plain: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    from cli_run import run

    code, out, err = run(capsys, "train", "plain_test", "--data", "fake:1x16x16:60:3",
                       "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--out",
                       str(tmp_path / "run"), "--no-report", "--recipe", "none", "--set",
                       "tensorboard=false")
    assert code == 0, err
    assert "test top-1" in out and "top-5" not in out and "top-3" not in out
    assert "1 epoch in" in out
    row = load_checkpoint(tmp_path / "run", prefer="last").meta["history"][0]
    assert row["val_top1"] is not None and row["val_top5"] is None
