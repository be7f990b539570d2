"""`convzoo train`, `eval` and `predict` end to end on small generated data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from convzoo.cli import main

DATA = "fake:1x28x28:64:4"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    rc = main(["train", "lenet5_modern", "--data", DATA, "--epochs", "2", "--batch-size", "16",
               "--lr", "0.05", "--device", "cpu", "--out", str(out), "--seed", "1",
               "--quiet", "--set", "tensorboard=false"])
    assert rc == 0
    return out


def test_train_writes_a_run(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["model"] == "lenet5_modern" and summary["data"] == DATA
    assert summary["epochs"] == 2 and 0 <= summary["test"]["top1"] <= 1
    assert summary["test"]["top5"] >= summary["test"]["top1"]
    assert (run_dir / "loss.png").is_file() and (run_dir / "error.png").is_file()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["lr"] == 0.05 and config["seed"] == 1 and config["tensorboard"] is False


def test_eval_json(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--format", "json", "--device", "cpu"]) == 0
    r = json.loads(capsys.readouterr().out)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert r["n"] == 12 and set(r["per_class"]) == {"class0", "class1", "class2", "class3"}
    assert r["top1"] == pytest.approx(summary["test"]["top1"])
    assert 0 <= r["top1"] <= r["top5"] <= 1
    assert Path(r["confusion_png"]).is_file()


def test_eval_table(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(run_dir / "last"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "class3" in out and "top-1 accuracy" in out


def test_eval_matches_classes_by_name(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--data", "fake:1x28x28:40:2", "--format", "json",
                 "--device", "cpu"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r["per_class"]) == {"class0", "class1"} and r["n"] == 8
    assert "matched by name: 2 of the data's 2 and the model's 4" in r["note"]


def test_eval_on_data_with_other_classes_is_an_error(run_dir: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--data", "digits", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "none of the data's classes" in err and len(err.strip().splitlines()) == 1


def test_recipe_and_flags(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('source = "a test"\nmodel = "lenet5_modern"\ndata = "fake:1x28x28:32:2"\n'
                      'epochs = 7\nbatch_size = 8\nlr = 0.01\nschedule = "cosine"\n')
    out = tmp_path / "run"
    rc = main(["train", "--recipe", str(recipe), "--epochs", "1", "--out", str(out),
               "--device", "cpu", "--quiet", "--set", "plots=false"])
    assert rc == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["epochs"], cfg["lr"], cfg["schedule"], cfg["batch_size"]) == (1, 0.01,
                                                                              "cosine", 8)
    assert cfg["recipe"] == "r"


@pytest.mark.parametrize("argv, message", [
    (["train", "lenet6", "--data", DATA], "unknown model 'lenet6'"),
    (["train", "lenet5", "--data", "nosuchdata"], "unknown data set"),
    (["train", "lenet5"], "which data set"),
    (["train", "lenet5", "--data", DATA, "--recipe", "nosuch"], "unknown recipe"),
    (["train", "lenet5", "--data", DATA, "--set", "lr_max=3"], "unknown setting 'lr_max'"),
    (["eval", "/nonexistent/run"], "does not exist"),
])
def test_bad_input_exits_2(argv: list[str], message: str, capsys: pytest.CaptureFixture,
                           tmp_path: Path) -> None:
    assert main([*argv, "--device", "cpu"] if argv[0] == "train" else argv) == 2
    assert message in capsys.readouterr().err


def test_bad_flag_exits_2() -> None:
    with pytest.raises(SystemExit) as e:
        main(["train", "lenet5", "--epochs", "many"])
    assert e.value.code == 2


def test_nan_exits_1_naming_the_step(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["train", "lenet5_modern", "--data", DATA, "--epochs", "2", "--batch-size", "16",
               "--lr", "1e30", "--device", "cpu", "--out", str(tmp_path / "r"), "--quiet"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "NaN or infinite at step" in err


def test_resume_via_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r"
    common = ["--device", "cpu", "--quiet"]
    assert main(["train", "lenet5_modern", "--data", "fake:1x28x28:32:2", "--epochs", "2",
                 "--batch-size", "16", "--out", str(out), "--stop-after", "1", *common]) == 0
    assert json.loads((out / "summary.json").read_text())["status"] == "stopped"
    assert main(["train", "--resume", str(out), *common]) == 0
    assert json.loads((out / "summary.json").read_text())["epochs"] == 2
    assert main(["train", "lenet5_modern", "--data", "fake:1x28x28:32:2",
                 "--out", str(out), *common]) == 2  # a run is there already


def test_predict_from_a_run(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("convzoo.cli.predict")
    from torchvision.io import write_png

    from convzoo.data.catalog import load_dataset

    ds = load_dataset(DATA)
    paths = []
    for i in range(2):
        p = tmp_path / f"img{i}.png"
        write_png(ds.test.images[i], str(p))
        paths.append(str(p))
    capsys.readouterr()
    assert main(["predict", str(run_dir), *paths]) == 0
    out = capsys.readouterr().out
    assert "class" in out and "img0.png" in out
    assert torch.is_tensor(ds.test.images)


def test_demo_trains_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from convzoo import demo

    assert demo.main(["--data", "fake:1x28x28:64:10", "--epochs", "1",
                      "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "stem.c1" in out and "60,000" in out  # LeNet-5's layer table
    assert "test accuracy" in out and str(tmp_path / "demo") in out


def test_demo_falls_back_to_mnist5k(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture) -> None:
    from convzoo import demo
    from convzoo.data import catalog
    from convzoo.errors import UserInputError

    def missing(*a, **k):
        raise UserInputError("fashion-mnist not found in /nowhere")

    monkeypatch.setattr(catalog, "load_dataset", missing)
    assert demo.pick_data(None, None) == "mnist5k"
    out = capsys.readouterr().out
    assert "Fashion-MNIST is not installed" in out and "mnist5k instead" in out


def test_set_input_size_hxw_trains_on_the_datas_channels(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(["train", "lenet5_modern", "--data", "fake:3x28x28:32:2", "--epochs", "1",
                 "--max-steps", "2", "--batch-size", "16", "--device", "cpu", "--out", str(out),
                 "--quiet", "--set", "input_size=32x32", "--set", "plots=false",
                 "--set", "tensorboard=false"]) == 0
    meta = json.loads((out / "last" / "checkpoint.json").read_text())
    assert meta["input_size"] == [3, 32, 32] and meta["model_args"]["in_channels"] == 3
    capsys.readouterr()
    assert main(["eval", str(out), "--format", "json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 6


@pytest.mark.parametrize("value, expected", [
    ("3x24x20", (3, 24, 20)), ("24x20", (0, 24, 20)), (24, (0, 24, 24)),
    ([24, 20], (0, 24, 20)), ([1, 24, 20], (1, 24, 20)),
])
def test_config_reads_input_size_like_every_size(value, expected) -> None:
    from convzoo.train.config import TrainConfig, replace

    assert replace(TrainConfig(), {"input_size": value}, "test").input_size == expected


@pytest.mark.parametrize("value", ["24x", [3, 24, 20, 1], True, {"h": 3}, "0x0"])
def test_config_refuses_a_malformed_input_size(value) -> None:
    from convzoo.errors import UserInputError
    from convzoo.train.config import TrainConfig, replace

    with pytest.raises(UserInputError, match="input_size|size"):
        replace(TrainConfig(), {"input_size": value}, "test")


def test_a_run_as_a_source(run_dir: Path) -> None:
    from convzoo.errors import UserInputError
    from convzoo.runs.source import load_source

    src = load_source(str(run_dir))
    assert src.class_names == ["class0", "class1", "class2", "class3"]
    assert src.checkpoint is not None and src.meta["model"] == "lenet5_modern"
    assert not src.model.training and src.preprocess.channels == 1
    x = src.preprocess(torch.zeros(3, 40, 50, dtype=torch.uint8))  # any size, RGB
    assert x.shape == tuple(src.meta["input_size"])
    with pytest.raises(UserInputError, match="brings its own weights"):
        load_source(str(run_dir), "imagenet")
    with pytest.raises(UserInputError, match="does not exist"):
        load_source("lenet5_modern", runs_only=True)


def test_no_recipe_takes_the_models_defaults_and_says_so(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    rc = main(["train", "lenet5", "--data", "fake:1x32x32:64:4", "--max-steps", "2",
               "--device", "cpu", "--out", str(out), "--no-report"])
    printed = capsys.readouterr().out
    assert rc == 0 and "its defaults: recipe lenet5_mnist" in printed
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["recipe"] == "lenet5_mnist" and cfg["lr"] == 5e-4  # not the generic 0.1
    assert cfg["data"] == "fake:1x32x32:64:4"  # defaults say how to train, never on what
    sources = json.loads((out / "summary.json").read_text())["config_sources"]
    assert sources["lr"] == "recipe" and sources["recipe"] == "model default"
    assert sources["max_steps"] == "flag" and sources["momentum"] in ("recipe", "default")
    assert not (out / "report.html").exists()


def test_recipe_none_gives_the_generic_defaults(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    rc = main(["train", "lenet5", "--data", "fake:1x32x32:64:4", "--max-steps", "1",
               "--device", "cpu", "--out", str(out), "--recipe", "none", "--quiet",
               "--no-report"])
    cfg = json.loads((out / "config.json").read_text())
    assert rc == 0 and cfg["recipe"] is None and cfg["lr"] == 0.1


def test_a_finished_run_writes_its_report(run_dir: Path) -> None:
    page = (run_dir / "report.html").read_text()
    assert "<img" in page and "data:image/png;base64," in page
    assert 'src="http' not in page and "<script" not in page  # opens from disk, no network


def test_eval_reads_only_the_scored_split(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A run is scored from its test files and its checkpoint's statistics: its training files
    may be gone, and the scores are the ones the run reported, in the precision it used."""
    from convzoo.data.idx import idx_bytes

    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for prefix, n in (("train", 48), ("t10k", 20)):
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        images = (rng.integers(0, 64, (n, 28, 28)) + 19 * labels[:, None, None]).astype(np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(images))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    run = tmp_path / "run"
    assert main(["train", "lenet5", "--data", "mnist", "--data-dir", str(tmp_path / "data"),
                 "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--out", str(run),
                 "--quiet", "--set", "tensorboard=false"]) == 0
    (folder / "train-images-idx3-ubyte").write_bytes(b"not an IDX file")
    capsys.readouterr()
    assert main(["eval", str(run), "--format", "json", "--no-plot", "--device", "cpu"]) == 0
    r = json.loads(capsys.readouterr().out)
    summary = json.loads((run / "summary.json").read_text())
    assert r["n"] == 20 and r["confusion_png"] is None
    assert r["top1"] == summary["test"]["top1"]
    assert r["loss"] == pytest.approx(summary["test"]["loss"], rel=1e-6)
    assert not (run / "eval").exists()


def test_scoring_precision_follows_the_run() -> None:
    from convzoo import create_model
    from convzoo.runtime.device import run_amp

    model, size, cpu = create_model("lenet5"), (1, 32, 32), torch.device("cpu")
    ran = {"config": {"amp": "auto"}, "amp": "bfloat16", "device_type": "cpu"}
    assert run_amp(ran, cpu, model, size) is torch.bfloat16  # as the run evaluated
    assert run_amp({**ran, "device_type": "cuda"}, cpu, model, size) is None  # LeNet: fp32 rule
    assert run_amp({"config": {"amp": "bf16"}}, cpu, model, size) is torch.bfloat16
    assert run_amp({"config": {"amp": "fp32"}, "amp": "bfloat16", "device_type": "cpu"},
                   cpu, model, size) is None
