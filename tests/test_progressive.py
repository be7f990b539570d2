"""Progressive resizing: the training input's side by epoch, the batches' sizes, evaluation at
the model's size, and a run stopped between epochs and resumed equals the uninterrupted one."""

import pytest
import torch

from convzoo.errors import UserInputError
from convzoo.runs.checkpoint import load_checkpoint
from convzoo.train import TrainConfig, fit
from convzoo.train.run import loader
from convzoo.train.schedules import progressive_side

DATA = "fake:3x16x16:16:4"


def _cfg(out, **kw):
    base = dict(model="resnet20", data=DATA, epochs=3, batch_size=16, lr=0.05, device="cpu",
                out=str(out), tensorboard=False, plots=False, log_every=1,
                progressive_from=16, progressive_to=32, augment="shift_flip")
    base.update(kw)
    return TrainConfig(**base)


def test_side_rises_linearly_in_steps():
    cfg = TrainConfig(epochs=5, progressive_from=160, progressive_to=192)
    assert [progressive_side(cfg, e) for e in range(5)] == [160, 160, 192, 192, 192]
    cfg = TrainConfig(epochs=4, progressive_from=128, progressive_to=224)
    assert [progressive_side(cfg, e) for e in range(4)] == [128, 160, 192, 224]
    assert progressive_side(TrainConfig(epochs=4), 2) is None
    with pytest.raises(UserInputError, match="progressive"):
        TrainConfig(progressive_from=160).validate()


def test_training_batches_take_the_epochs_side_and_evaluation_keeps_its_own(tmp_path):
    from convzoo.data import load_dataset

    cfg = _cfg(tmp_path, epochs=3, progressive_from=32, progressive_to=96)
    ds = load_dataset(DATA)
    dev = torch.device("cpu")
    sides = [next(iter(loader(ds.train, ds, cfg, train=True, device=dev, input_size=(3, 48, 48),
                              epoch=e, channels_last=False)))[0].shape[-2:] for e in range(3)]
    x, _ = next(iter(loader(ds.test, ds, cfg, train=False, device=dev, input_size=(3, 48, 48),
                            epoch=2, channels_last=False)))
    assert [tuple(s) for s in sides] == [(32, 32), (64, 64), (96, 96)]
    assert tuple(x.shape[-2:]) == (48, 48)


def test_stopped_and_resumed_is_the_same_run(tmp_path):
    # 32 -> 64 over 3 epochs: 32, 64, 64 px; stopped after the first epoch
    kw = dict(progressive_from=32, progressive_to=64, input_size=(3, 32, 32), batch_size=8)
    fit(_cfg(tmp_path / "whole", **kw))
    fit(_cfg(tmp_path / "parts", stop_after=1, **kw))
    fit(_cfg(tmp_path / "parts", **kw), resume=tmp_path / "parts")
    a, b = load_checkpoint(tmp_path / "whole", prefer="last"), \
        load_checkpoint(tmp_path / "parts", prefer="last")
    assert a.meta["epoch"] == b.meta["epoch"]
    ta, tb = a.tensors("model"), b.tensors("model")
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
