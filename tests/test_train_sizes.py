"""An 'HxW' input size (as `--set input_size=32x32` gives it) trains on the data's channels."""

from __future__ import annotations

from pathlib import Path

import pytest

from convzoo import create_model
from convzoo.train import TrainConfig, fit, load_checkpoint
from convzoo.train.config import replace
from convzoo.train.run import model_input_size


def _cfg(tmp_path: Path, **kw) -> TrainConfig:
    base = TrainConfig(model="lenet5_modern", data="fake:3x16x16:64:4", epochs=1, max_steps=2,
                       batch_size=16, device="cpu", out=str(tmp_path / "run"), plots=False,
                       tensorboard=False)
    return replace(base, kw, "test")


def test_hxw_input_size_trains_on_the_datas_channels(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, input_size="32x32")
    assert cfg.input_size[0] == 0  # the channels are left open by the size itself
    summary = fit(cfg)
    assert summary["status"] == "completed" and summary["steps"] == 2
    meta = load_checkpoint(tmp_path / "run", prefer="last").meta
    assert meta["input_size"] == [3, 32, 32]
    assert meta["model_args"]["in_channels"] == 3


def test_hxw_takes_a_given_models_channels(tmp_path: Path) -> None:
    # a 1-channel model on 3-channel data: the images are averaged to grey, not fed as RGB
    model = create_model("lenet5_modern", num_classes=4, in_channels=1)
    fit(_cfg(tmp_path, input_size="32x32"), model=model)
    assert load_checkpoint(tmp_path / "run").meta["input_size"] == [1, 32, 32]


@pytest.mark.parametrize(("size", "expected"), [(None, (1, 32, 32)), ("20x24", (1, 20, 24)),
                                                ("2x20x24", (2, 20, 24))])
def test_model_input_size_fills_only_open_channels(size: str | None,
                                                   expected: tuple[int, int, int]) -> None:
    model = create_model("lenet5_modern", num_classes=4, in_channels=1)
    cfg = replace(TrainConfig(), {"input_size": size}, "test")
    assert model_input_size(model, cfg) == expected
