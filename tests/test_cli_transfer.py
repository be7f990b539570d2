"""`convzoo finetune`, `features` and `experiment transfer` end to end on small data."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from cli_run import run
from convzoo.cli import main
from convzoo.runs.checkpoint import load_checkpoint

SRC_DATA = "fake:1x28x28:160:4"
NEW_DATA = "fake:1x28x28:120:3"



@pytest.fixture(scope="module")
def source_run(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("src") / "run"
    assert main(["train", "lenet5_modern", "--data", SRC_DATA, "--epochs", "2", "--device",
                 "cpu", "--out", str(out), "--quiet", "--batch-size", "32"]) == 0
    return str(out)


def test_finetune_partial_from_a_train_run(capsys, tmp_path, source_run) -> None:
    out = tmp_path / "ft"
    code, text, _ = run(capsys, "finetune", source_run, "--data", NEW_DATA, "--mode",
                        "partial", "--train-last", "1", "--lr", "0.05", "--lr-decay", "0.5",
                        "--epochs", "2", "--device", "cpu", "--out", str(out), "--quiet")
    assert code == 0
    assert "stage2" in text and "frozen" in text and "trains" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and 0 <= summary["test"]["top1"] <= 1
    groups = {g["name"]: g for g in summary["finetune"]["groups"]}
    assert groups["head"]["lr"] == 0.05 and groups["stage2"]["lr"] == 0.025
    assert not groups["stem"]["trainable"] and groups["stem"]["lr"] is None
    # frozen groups kept the source's weights; the head has the new classes
    src = load_checkpoint(source_run).model_state
    new = load_checkpoint(out, prefer="last").model_state
    for k in src:
        if k.startswith(("stem.", "stages.0.")):
            assert torch.equal(src[k], new[k]), k
    assert new["head.fc.weight"].shape[0] == 3
    assert any(not torch.equal(src[k], new[k]) for k in src if k.startswith("stages.1."))
    # the result loads in eval, predict's loader, and finetune again
    code, text, _ = run(capsys, "eval", str(out), "--format", "json", "--device", "cpu")
    assert code == 0 and json.loads(text)["n"] == summary["test"]["n"]
    code, _, _ = run(capsys, "finetune", str(out), "--data", NEW_DATA, "--mode", "linear",
                     "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "again"),
                     "--quiet")
    assert code == 0


def test_finetune_linear_trains_only_the_head(capsys, tmp_path, source_run) -> None:
    out = tmp_path / "lin"
    code, text, _ = run(capsys, "finetune", source_run, "--data", NEW_DATA, "--mode", "linear",
                        "--epochs", "2", "--device", "cpu", "--out", str(out), "--quiet")
    assert code == 0 and "850 of" not in text  # the new head: 84*3+3 = 255 parameters
    assert "255 of 61," in text
    src = load_checkpoint(source_run).model_state
    new = load_checkpoint(out, prefer="last").model_state
    assert all(torch.equal(src[k], new[k]) for k in src if not k.startswith("head.fc."))


def test_finetune_resume(capsys, tmp_path, source_run) -> None:
    out = tmp_path / "res"
    args = ["--data", NEW_DATA, "--mode", "partial", "--epochs", "3", "--device", "cpu",
            "--out", str(out), "--quiet"]
    assert run(capsys, "finetune", source_run, *args, "--stop-after", "1")[0] == 0
    code, _, _ = run(capsys, "finetune", "--resume", str(out), "--quiet")
    assert code == 0
    assert json.loads((out / "summary.json").read_text())["epochs"] == 3


@pytest.mark.parametrize(("argv", "needle"), [
    (["finetune", "lenet5", "--data", NEW_DATA, "--mode", "linear", "--device", "cpu"],
     "nothing to train"),
    (["finetune", "vgg11", "--weights", "nope.pth", "--data", NEW_DATA], "does not exist"),
    (["finetune", "--data", NEW_DATA], "what to fine-tune"),
    (["finetune", "lenet5_modern", "--mode", "half", "--data", NEW_DATA], "invalid choice"),
])
def test_finetune_errors(capsys, tmp_path, argv, needle) -> None:
    code, _, err = run(capsys, *argv, "--out", str(tmp_path / "x"))
    assert code == 2 and needle in err


def test_wrong_architecture_for_the_weights(capsys, tmp_path, source_run) -> None:
    weights = f"{source_run}/best/model.safetensors"
    code, _, err = run(capsys, "finetune", "vgg11", "--weights", weights, "--data", NEW_DATA,
                       "--out", str(tmp_path / "x"))
    assert code == 2 and "right architecture" in err


@pytest.mark.parametrize(("layer", "dim"), [(None, 84), ("stage1", 16)])
def test_features_source_and_random(capsys, tmp_path, source_run, layer, dim) -> None:
    files = {}
    for random in (False, True):
        out = tmp_path / f"f{random}.safetensors"
        argv = ["features", source_run, "--data", NEW_DATA, "--out", str(out),
                "--device", "cpu"] + (["--layer", layer] if layer else [])
        code, _, _ = run(capsys, *argv, *(["--random"] if random else []))
        assert code == 0
        files[random] = load_file(str(out))
    t = files[False]
    assert t["train_features"].shape == (120, dim) and t["test_features"].shape == (24, dim)
    assert t["train_labels"].shape == (120,)
    assert not torch.equal(t["train_features"], files[True]["train_features"])


def test_experiment_transfer_writes_table_and_plot(capsys, tmp_path, source_run) -> None:
    out = tmp_path / "exp"
    code, text, _ = run(capsys, "experiment", "transfer", source_run, "--data", NEW_DATA,
                        "--labels-per-class", "5,20", "--epochs", "1", "--device", "cpu",
                        "--out", str(out))
    assert code == 0
    result = json.loads((out / "transfer.json").read_text())
    assert [r["labels_per_class"] for r in result["rows"]] == [5, 20]
    assert [r["train_images"] for r in result["rows"]] == [15, 60]
    for r in result["rows"]:
        for m in ("probe_pretrained", "probe_random", "partial", "scratch"):
            assert 0 <= r[m] <= 1
    assert (out / "transfer.png").stat().st_size > 1000
    assert "labels/class" in (out / "transfer.md").read_text()
    assert (out / "transfer.csv").read_text().count("\n") == 3
    assert "expected duration: about" in text
    # run again: the features and the four nets are loaded, not computed, and agree
    code, text, _ = run(capsys, "experiment", "transfer", source_run, "--data", NEW_DATA,
                        "--labels-per-class", "5,20", "--epochs", "1", "--device", "cpu",
                        "--out", str(out))
    assert code == 0 and text.count("finished in an earlier run with these settings") == 6
    assert json.loads((out / "transfer.json").read_text())["rows"] == result["rows"]
