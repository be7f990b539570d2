"""The training loop on small generated data: learning, auxiliary losses, the NaN stop,
checkpoints that resume exactly, damaged checkpoints, init-from."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from convzoo import registry
from convzoo.errors import UserInputError
from convzoo.models.base import ClassifierHead, ConvNet, ModelOutput, pool_flatten
from convzoo.runs.checkpoint import save_checkpoint
from convzoo.train import TrainConfig, TrainingDiverged, fit, load_checkpoint, model_from_checkpoint
from convzoo.train.epoch import loss_fn
from convzoo.train.init_from import init_from, vgg_paper_keys

DATA = "fake:1x16x16:96:4"


class Tiny(ConvNet):
    """Conv, batch norm, dropout: every kind of state a resume has to restore."""

    default_input_size = (1, 16, 16)

    def __init__(self, num_classes: int = 4, in_channels: int = 1, dropout: float = 0.3,
                 explode_after: int | None = None, act: str = "relu") -> None:
        super().__init__()
        self.num_classes, self.explode_after, self.calls = num_classes, explode_after, 0
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.BatchNorm2d(8),
                                  nn.ReLU())
        self.stages = nn.ModuleList([nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())])
        self.head = ClassifierHead(pool_flatten(), 16, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if self.training:
            self.calls += 1
            if self.explode_after is not None and self.calls > self.explode_after:
                return y * float("inf")
        return y


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> str:
    registry._ensure_loaded()
    monkeypatch.setitem(registry._REGISTRY, "tiny_test",
                        registry.ModelEntry("tiny_test", Tiny))
    return "tiny_test"


def _cfg(tmp_path: Path, name: str, **kw) -> TrainConfig:
    # val_split 0: the whole training split, so steps and batches are counted from it
    base = dict(model=name, data=DATA, epochs=4, batch_size=16, lr=0.05, device="cpu",
                out=str(tmp_path / "run"), tensorboard=False, plots=False, log_every=1,
                val_split=0.0)
    base.update(kw)
    return TrainConfig(**base)


def test_a_few_epochs_lower_the_loss(tiny: str, tmp_path: Path) -> None:
    s = fit(_cfg(tmp_path, tiny, epochs=5, schedule="cosine", lr=0.2,
                 model_args={"dropout": 0.0}, val_split=0.1))
    rows = [json.loads(json.dumps(r)) for r in load_checkpoint(tmp_path / "run").meta["history"]]
    assert rows[-1]["train_loss"] < 0.8 * rows[0]["train_loss"]
    assert s["status"] == "completed" and s["epochs"] == 5
    assert 0 <= s["test"]["top1"] <= 1 and s["test"]["top5"] == 1.0  # 4 classes: top-4
    for f in ("summary.json", "metrics.csv", "config.json", "last/model.safetensors",
              "last/state.safetensors", "last/checkpoint.json", "best/checkpoint.json"):
        assert (tmp_path / "run" / f).is_file(), f
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert {"model", "data", "epochs", "best_epoch", "wall_s", "device", "test"} <= set(summary)
    assert len((tmp_path / "run" / "metrics.csv").read_text().splitlines()) == 6


def test_resume_gives_the_same_weights_as_not_stopping(tiny: str, tmp_path: Path) -> None:
    kw = dict(schedule="onecycle", ema=0.9, augment="shift_flip", momentum=0.9, nesterov=True,
              label_smoothing=0.1, grad_clip=5.0, weight_decay=5e-4)
    fit(_cfg(tmp_path / "a", tiny, **kw))
    stopped = fit(_cfg(tmp_path / "b", tiny, stop_after=2, **kw))
    assert stopped["status"] == "stopped" and stopped["epochs"] == 2
    ckpt = load_checkpoint(tmp_path / "b" / "run", prefer="last")
    cfg = TrainConfig.from_dict(ckpt.meta["config"])
    cfg.stop_after = None
    fit(cfg, resume=tmp_path / "b" / "run")
    a = load_checkpoint(tmp_path / "a" / "run", prefer="last")
    b = load_checkpoint(tmp_path / "b" / "run", prefer="last")
    assert a.meta["step"] == b.meta["step"] == 4 * 6
    for which in ("model", "ema"):
        ta, tb = a.tensors(which), b.tensors(which)
        assert ta.keys() == tb.keys()
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{which}: {k} differs"
    assert a.meta["history"] == [
        {**r, "epoch_s": a.meta["history"][i]["epoch_s"],
         "images_per_s": a.meta["history"][i]["images_per_s"]}
        for i, r in enumerate(b.meta["history"])]


def test_nan_stops_the_run_naming_the_step_and_keeps_the_last_checkpoint(
        tiny: str, tmp_path: Path) -> None:
    # 96 images in batches of 16: 6 steps per epoch; the 9th step's loss is infinite
    cfg = _cfg(tmp_path, tiny, model_args={"explode_after": 8})
    with pytest.raises(TrainingDiverged, match=r"at step 9 \(epoch 2, batch 3 of 6\).*"
                                               r"last good checkpoint.*epoch 1"):
        fit(cfg)
    ckpt = load_checkpoint(tmp_path / "run", prefer="last")
    assert ckpt.meta["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in ckpt.model_state.values())
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "diverged"


def test_aux_logits_are_weighted() -> None:
    y = torch.tensor([0, 1, 2])
    main, aux1, aux2 = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4)
    ce = nn.functional.cross_entropy
    cfg = TrainConfig(aux_weight=0.3)
    loss, logits = loss_fn(ModelOutput(main, (aux1, aux2)), y, cfg)
    assert torch.allclose(loss, ce(main, y) + 0.3 * ce(aux1, y) + 0.3 * ce(aux2, y))
    assert logits is main
    loss, _ = loss_fn(ModelOutput(main, ()), y, cfg)  # eval mode: no auxiliary outputs
    assert torch.allclose(loss, ce(main, y))
    loss, _ = loss_fn(main, y, TrainConfig(label_smoothing=0.1))
    assert torch.allclose(loss, ce(main, y, label_smoothing=0.1))


def _saved(tmp_path: Path) -> Path:
    model = Tiny()
    save_checkpoint(tmp_path / "ck", model=model, meta={"model": "tiny_test", "epoch": 1},
                    optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    return tmp_path / "ck"


def test_truncated_safetensors_is_a_clear_error(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match="corrupt or truncated") as e:
        load_checkpoint(path)  # every file is checked on opening
    assert "\n" not in str(e.value)


def test_bad_json_is_a_clear_error(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    (path / "checkpoint.json").write_text('{"format": "convzoo.checkpoint", "ep')
    with pytest.raises(UserInputError, match="corrupt.*not valid JSON"):
        load_checkpoint(path)
    with pytest.raises(UserInputError, match="no convzoo checkpoint"):
        load_checkpoint(tmp_path)


def test_init_from_copies_what_matches(tiny: str, tmp_path: Path) -> None:
    path = _saved(tmp_path)
    target = Tiny(num_classes=7)
    report = init_from(target, str(path))
    src = load_checkpoint(path).model_state
    assert "head.fc.weight" not in report.copied  # 4 classes there, 7 here
    assert "stem.0.weight" in report.copied
    assert torch.equal(target.stem[0].weight, src["stem.0.weight"])


def test_vgg_rule_copies_a_first_four_convs_and_the_classifier() -> None:
    with torch.device("meta"):
        a = registry.create_model("vgg11").state_dict()
        d = registry.create_model("vgg16").state_dict()
    keys = vgg_paper_keys(a)
    layers = sorted({k.rsplit(".", 1)[0] for k in keys})
    assert layers == ["head.fc", "head.pre.fc6", "head.pre.fc7", "stages.0.0.conv",
                      "stages.1.0.conv", "stages.2.0.conv", "stages.2.1.conv"]
    assert all(k in d and d[k].shape == a[k].shape for k in keys)


def test_checkpoint_names_its_classes_and_model(tiny: str, tmp_path: Path) -> None:
    fit(_cfg(tmp_path, tiny, epochs=1))
    meta = load_checkpoint(tmp_path / "run").meta
    assert meta["class_names"] == ["class0", "class1", "class2", "class3"]
    assert meta["model"] == tiny and meta["model_args"]["num_classes"] == 4
    assert {"torch", "convzoo", "safetensors"} <= set(meta["versions"])
    state = load_checkpoint(tmp_path / "run").training_state()
    assert state["rng"]["torch"].dtype == torch.uint8
    assert isinstance(OrderedDict(state["optimizer"]["state"]), dict)


def test_validation_split_drives_best_and_test_is_separate(tiny: str, tmp_path: Path) -> None:
    s = fit(_cfg(tmp_path, tiny, epochs=1, val_split=0.25))
    assert s["test"]["n"] == 19  # the fake set's 96 // 5 test images, untouched
    meta = load_checkpoint(tmp_path / "run").meta
    assert meta["best_epoch"] == 1 and meta["history"][0]["val_top1"] is not None


def test_impossible_settings_are_bad_input(tiny: str, tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="batch_size"):
        fit(_cfg(tmp_path, tiny, batch_size=0))
    with pytest.raises(UserInputError, match="unknown schedule"):
        fit(_cfg(tmp_path, tiny, schedule="linear-ish"))


def test_resume_trains_the_callers_model_when_it_matches(tiny: str, tmp_path: Path) -> None:
    first = fit(_cfg(tmp_path, tiny, epochs=2, stop_after=1))
    assert first["status"] == "stopped"
    model = registry.create_model(tiny, num_classes=4, in_channels=1)
    s = fit(_cfg(tmp_path, tiny, epochs=2), resume=tmp_path / "run", model=model)
    assert s["status"] == "completed" and s["epochs"] == 2
    saved = load_checkpoint(tmp_path / "run", prefer="last").model_state
    for k, v in model.state_dict().items():  # the caller's own module trained on
        assert torch.equal(v, saved[k]), k


def test_resume_refuses_a_model_of_another_architecture(tiny: str, tmp_path: Path) -> None:
    fit(_cfg(tmp_path, tiny, epochs=2, stop_after=1))
    wider = registry.create_model(tiny, num_classes=7, in_channels=1)
    with pytest.raises(UserInputError, match=r"differs .*num_classes=7 \(saved 4\)"):
        fit(_cfg(tmp_path, tiny, epochs=2), resume=tmp_path / "run", model=wider)
    unnamed = Tiny(num_classes=4)
    unnamed.stages.append(nn.Identity())
    unnamed.head = ClassifierHead(pool_flatten(), 16, 5, 0.3)
    with pytest.raises(UserInputError, match="does not have the architecture.*head.fc"):
        fit(_cfg(tmp_path, tiny, epochs=2), resume=tmp_path / "run", model=unnamed)


def test_a_given_model_is_recorded_by_its_own_name(tiny: str, tmp_path: Path) -> None:
    # the config's name is only a label: the checkpoint names what trained, so it rebuilds
    model = registry.create_model("lenet5_modern", num_classes=4, in_channels=1)
    fit(_cfg(tmp_path, tiny, epochs=1, input_size=(1, 32, 32)), model=model)
    meta = load_checkpoint(tmp_path / "run").meta
    assert meta["model"] == "lenet5_modern" and meta["config"]["model"] == "lenet5_modern"
    assert meta["config"]["model_args"] == {"num_classes": 4, "in_channels": 1}
    rebuilt = model_from_checkpoint(load_checkpoint(tmp_path / "run"))
    for k, v in rebuilt.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k


def test_unknown_augment_preset_lists_the_real_choices(tiny: str, tmp_path: Path) -> None:
    from convzoo.data.augment import augment_names

    with pytest.raises(UserInputError, match="unknown augmentation preset 'zoom'") as e:
        fit(_cfg(tmp_path, tiny, augment="zoom"))
    assert all(name in str(e.value) for name in augment_names())
    assert {"shift", "shift_flip", "crop_flip", "cifar"} <= set(augment_names())
    with pytest.raises(UserInputError, match="augment: .*the fields are crop_pad"):
        fit(_cfg(tmp_path / "b", tiny, augment={"crop": 2}))


def test_on_step_ends_the_epoch_where_it_says(tiny: str) -> None:
    from convzoo.data.catalog import load_dataset
    from convzoo.train.epoch import RunState, train_one_epoch
    from convzoo.train.run import loader
    from convzoo.train.schedules import Schedule, make_optimizer

    cfg = TrainConfig(model=tiny, batch_size=16, epochs=1, device="cpu")
    ds = load_dataset(DATA)
    model = Tiny()
    batches = loader(ds.train, ds, cfg, train=True, device=torch.device("cpu"),
                     input_size=(1, 16, 16), epoch=0, channels_last=False)
    opt = make_optimizer(model, cfg)
    state, seen = RunState(), []
    tr = train_one_epoch(model, batches, opt, Schedule(opt, cfg, len(batches), len(batches)),
                         cfg, state, device=torch.device("cpu"),
                         on_step=lambda i: seen.append((i, state.step)) or i == 2)
    assert seen == [(0, 1), (1, 2), (2, 3)] and state.step == 3 and tr["images"] == 48


class Heard:
    def __init__(self) -> None:
        self.steps: list = []
        self.rows: list = []

    def on_step(self, event) -> None:
        self.steps.append((event.epoch, event.batch, event.batches, event.step,
                           float(event.loss)))

    def on_epoch_end(self, row) -> None:
        self.rows.append(row)


def test_callbacks_hear_every_step_and_epoch_and_the_summary_holds_the_history(tmp_path):
    heard = Heard()
    cfg = TrainConfig(model="tiny_test", data=DATA, epochs=2, batch_size=32, device="cpu",
                      out=str(tmp_path / "run"), plots=False, tensorboard=False)
    summary = fit(cfg, model=Tiny(), callbacks=[heard])
    assert [s[3] for s in heard.steps] == list(range(1, summary["steps"] + 1))
    per_epoch = summary["steps"] // 2
    assert [(s[0], s[1]) for s in heard.steps] == \
        [(e, b) for e in range(2) for b in range(1, per_epoch + 1)]
    assert all(s[2] == per_epoch for s in heard.steps)
    assert summary["history"] == heard.rows and [r["epoch"] for r in heard.rows] == [1, 2]
    # each step's loss is the one steps.csv records
    rows = (tmp_path / "run" / "steps.csv").read_text().splitlines()[1:]
    assert [float(r.split(",")[2]) for r in rows] == [s[4] for s in heard.steps]


def test_fit_rebuilds_a_resumed_runs_config_from_its_checkpoint(tmp_path):
    cfg = TrainConfig(model="lenet5_modern", data=DATA, epochs=1, batch_size=32, device="cpu",
                      out=str(tmp_path / "run"), plots=False, tensorboard=False, lr=0.02,
                      val_split=0.0)
    first = fit(cfg)
    assert first["epochs"] == 1
    more = fit(resume=tmp_path / "run", changes={"epochs": 2})
    assert more["epochs"] == 2 and more["steps"] == 2 * first["steps"]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["lr"] == 0.02 and saved["epochs"] == 2  # its own settings, the change applied
    with pytest.raises(UserInputError, match="trained with other settings"):
        fit(resume=tmp_path / "run", changes={"lr": 0.5, "epochs": 3})
    with pytest.raises(UserInputError, match="resume=RUN_DIR"):
        fit()
