"""A run of few steps evaluates with batch-norm statistics re-estimated from its training
images (train/batch_norm.py), and its checkpoint holds them; a longer run, or settle_bn=false,
keeps the running averages."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from convzoo.data.catalog import load_dataset
from convzoo.runs.source import load_source
from convzoo.runtime.progress import Progress
from convzoo.train import batch_norm as bn
from convzoo.train.config import TrainConfig
from convzoo.train.loop import fit
from convzoo.train.run import loader

DATA = "fake:1x16x16:64:2"


def _train(tmp_path, name: str, **changes):
    cfg = TrainConfig(model="resnet20", data=DATA, epochs=1, batch_size=16, lr=0.05,
                      val_split=0, device="cpu", input_size=(1, 16, 16), plots=False,
                      tensorboard=False, out=str(tmp_path / name), **changes)
    out = io.StringIO()
    fit(cfg, progress=Progress(stream=io.StringIO(), out=out, force_plain=True))
    model = load_source(str(tmp_path / name / "last"), None).model
    return cfg, model, out.getvalue().splitlines()


def _norm_buffers(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.clone() for m in bn.trained_norms(model)
            for t in (m.running_mean, m.running_var)]


@pytest.fixture(scope="module")
def settled(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("bn"), "settled")


def test_a_short_run_holds_the_statistics_of_its_training_images(settled):
    cfg, model, lines = settled
    assert any("batch norm:" in line and "re-estimated" in line for line in lines), lines
    data = load_dataset(DATA, seed=cfg.seed)
    batches = loader(data.train, data, cfg, train=False, device=torch.device("cpu"),
                     input_size=(1, 16, 16), epoch=0, channels_last=False)
    again = copy.deepcopy(model)
    assert bn.recalibrate_bn(again, batches) > 0
    for saved, redone in zip(_norm_buffers(model), _norm_buffers(again)):
        torch.testing.assert_close(saved, redone, rtol=1e-4, atol=1e-5)


def test_settle_bn_false_keeps_the_running_averages(tmp_path, settled):
    _, model, lines = _train(tmp_path, "kept", settle_bn=False)
    assert not any("batch norm:" in line for line in lines)
    differ = [not torch.allclose(a, b, rtol=1e-3, atol=1e-4)
              for a, b in zip(_norm_buffers(model), _norm_buffers(settled[1]))]
    assert any(differ)
