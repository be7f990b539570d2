"""The lectures' experiments end to end on tiny settings, through the command line."""

import json

import pytest

from convzoo.cli import main


def test_activations_experiment_writes_json_markdown_and_plot(tmp_path, capsys):
    out = tmp_path / "act"
    assert main(["experiment", "activations", "--data", "fake:1x8x8:96:4",
                 "--act", "sigmoid,relu", "--depth", "6", "--epochs", "2",
                 "--batch-size", "32", "--out", str(out)]) == 0
    result = json.loads((out / "activations.json").read_text())
    assert [r["act"] for r in result["rows"]] == ["sigmoid", "relu"]
    for r in result["rows"]:
        assert len(r["train_loss"]) == 2 and 0 <= r["test_acc"] <= 1
        assert len(r["grad_norms_init"]) == 8  # first layer, 6 hidden, classifier
        assert r["step_loss"]
    sig, relu = result["rows"]
    # the lecture's point: through 7 sigmoid layers the first layer's gradient all but vanishes
    assert sig["grad_norm_first"] < relu["grad_norm_first"] / 100
    md = (out / "activations.md").read_text()
    assert md.count("| sigmoid |") == 1 and md.count("| relu |") == 1
    assert (out / "activations.png").stat().st_size > 1000
    assert "written:" in capsys.readouterr().out


def test_degradation_experiment_plain_and_residual_per_depth(tmp_path):
    out = tmp_path / "deg"
    assert main(["experiment", "degradation", "--data", "fake:1x16x16:64:4", "--depths", "8",
                 "--epochs", "2", "--batch-size", "32", "--out", str(out)]) == 0
    result = json.loads((out / "degradation.json").read_text())
    assert [(r["name"], r["residual"]) for r in result["rows"]] == \
        [("plain8", False), ("resnet8", True)]
    # the data's own size: the CIFAR nets end in a global pool, and padding costs time
    assert result["input_size"] == [1, 16, 16]
    for r in result["rows"]:
        assert len(r["train_err"]) == 2 and 0 <= r["final_train_err"] <= 1
    assert result["rows"][0]["params"] < result["rows"][1]["params"] + 1  # option A: no params
    md = (out / "degradation.md").read_text()
    assert "| plain8 |" in md and "| resnet8 |" in md
    assert (out / "degradation.png").stat().st_size > 1000


def test_degradation_highway_family_and_a_rerun_into_the_same_folder(tmp_path):
    out = tmp_path / "hw"
    argv = ["experiment", "degradation", "--family", "highway", "--data", "fake:1x8x8:64:4",
            "--depths", "3", "--epochs", "1", "--batch-size", "32", "--out", str(out)]
    assert main(argv) == 0
    assert main(argv) == 0  # the arms' runs are the experiment's own: replaced, not resumed
    names = [r["name"] for r in json.loads((out / "degradation.json").read_text())["rows"]]
    assert names == ["plain-3", "highway-3"]


@pytest.mark.parametrize("argv, words", [
    (["degradation", "--depths", "10"], "6n+2"),
    (["degradation", "--depths", "8,x"], "comma-separated list of numbers"),
    (["activations", "--act", "relu,swishy"], "unknown activation 'swishy'"),
    (["activations", "--model", "lenet5_modern", "--depth", "3"], "--depth applies"),
])
def test_bad_settings_exit_2_before_training(tmp_path, capsys, argv, words):
    code = main(["experiment", *argv, "--data", "fake:1x8x8:32:2", "--out",
                 str(tmp_path / "x")])
    assert code == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert not (tmp_path / "x" / "runs").exists()


def test_he_initialisation_keeps_the_relu_signal_alive(tmp_path):
    from convzoo.data.catalog import load_dataset
    from convzoo.experiments.activations import run_activations

    data = load_dataset("fake:1x8x8:64:4")
    first = {}
    for init in ("glorot", "he"):
        r = run_activations(data, tmp_path / init, acts=("relu",), depth=8, epochs=1,
                            batch_size=32, init=init, log=lambda _: None)["rows"][0]
        first[init] = r["grad_norm_first"]
    # Glorot's variance halves the signal at each ReLU, so 9 layers leave little of it (and of
    # the first layer's gradient); He's doubles the variance to make up for it
    assert first["he"] > 5 * first["glorot"]


@pytest.mark.parametrize("name", ["transfer", "transfer-depth", "activations", "degradation"])
def test_every_settings_field_is_a_flag_with_the_dataclass_default(name):
    """The command line is built from each experiment's settings dataclass: parsing no flags
    gives back the dataclass's defaults, field by field."""
    import argparse
    import dataclasses

    from convzoo.cli.experiment import add_parser
    from convzoo.experiments.activations import ActivationsSettings
    from convzoo.experiments.degradation import DegradationSettings
    from convzoo.experiments.settings import from_args
    from convzoo.experiments.transfer import TransferSettings
    from convzoo.experiments.transfer_depth import TransferDepthSettings

    cls = {"transfer": TransferSettings, "transfer-depth": TransferDepthSettings,
           "activations": ActivationsSettings, "degradation": DegradationSettings}[name]
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    required = {"transfer": ["src", "--data", "d"], "transfer-depth": ["src", "--data", "a,b"]}
    args = parser.parse_args(["experiment", name, *required.get(name, [])])
    got = from_args(cls, args)
    for f in dataclasses.fields(cls):
        if f.name not in ("source", "data"):
            assert getattr(got, f.name) == f.default, f.name
    if name == "transfer-depth":
        assert got.data == ("a", "b")


def test_experiment_settings_refuse_bad_values_in_one_line(capsys):
    for argv, needle in [
        (["experiment", "degradation", "--depths", "8,x"], "comma-separated list of numbers"),
        (["experiment", "degradation", "--epochs", "0"], "--epochs must be at least 1"),
        (["experiment", "activations", "--batch-size", "-3"], "--batch-size must be at least"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, err


def test_an_interrupted_experiment_continues_from_its_finished_parts(tmp_path, monkeypatch,
                                                                      capsys):
    """Degradation with two arms stopped in its second: the rerun loads the first arm's part
    (no training) and trains only the second; other settings would train it afresh."""
    from convzoo.experiments import degradation

    out = tmp_path / "deg"
    argv = ["experiment", "degradation", "--family", "highway", "--data", "fake:1x8x8:64:4",
            "--depths", "3", "--epochs", "1", "--batch-size", "32", "--out", str(out)]
    real = degradation.train_arm
    trained: list[str] = []

    def stops_at_the_second(*args, **kw):
        if trained:
            raise KeyboardInterrupt
        trained.append(args[1])
        return real(*args, **kw)

    monkeypatch.setattr(degradation, "train_arm", stops_at_the_second)
    assert main(argv) == 130  # Ctrl-C during the second arm
    first = out / "parts" / "plain-3.json"
    saved = json.loads(first.read_text())
    assert saved["settings"]["epochs"] == 1 and not (out / "parts" / "highway-3.json").exists()
    mtime = first.stat().st_mtime_ns
    capsys.readouterr()

    trained.clear()
    monkeypatch.setattr(degradation, "train_arm",
                        lambda *a, **k: trained.append(a[1]) or real(*a, **k))
    assert main(argv) == 0
    assert trained == ["highway-3"]  # the first arm was loaded, not trained again
    assert first.stat().st_mtime_ns == mtime
    printed = capsys.readouterr().out
    assert "plain-3: finished in an earlier run with these settings" in printed
    assert "expected duration: about" in printed and "1 of 2 parts already finished" in printed
    rows = json.loads((out / "degradation.json").read_text())["rows"]
    assert [r["name"] for r in rows] == ["plain-3", "highway-3"]

    # other settings (a rate) do not load it: the part is computed afresh, never mixed in
    from convzoo.experiments.parts import Parts

    said: list[str] = []
    other = Parts(out, "degradation", {**saved["settings"], "lr": 0.02}, said.append)
    del other.settings["experiment"]
    assert other.load("plain-3") is None and "other settings" in said[0]
    same = {k: v for k, v in saved["settings"].items() if k != "experiment"}
    assert Parts(out, "degradation", same, said.append).load("plain-3") == rows[0]


def test_the_estimate_times_a_step_with_the_threads_the_run_will_use(monkeypatch):
    """On a busy CPU more threads than free cores make a step many times slower than the run's
    own steps: the estimate must time with the thread count a run would choose, and give the
    caller's back."""
    import torch
    from torch import nn

    from convzoo.experiments import parts
    from convzoo.runtime import device

    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            seen.append(torch.get_num_threads())
            return self.fc(x)

    before = torch.get_num_threads()
    want = 1 if before > 1 else 2
    monkeypatch.setattr(device, "choose_threads",
                        lambda *a, **k: device.ThreadChoice(want, "test"))
    assert parts.step_seconds(Probe(), (4,), 8) > 0
    assert seen and set(seen) == {want}
    assert torch.get_num_threads() == before
