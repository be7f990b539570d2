"""Bad output paths, read-only run directories and bad values: one line, exit code 2, nothing
written or lost (in-process through `convzoo.cli.main`)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from convzoo.cli import main
from convzoo.runs import checkpoint as ck

TRAIN = ["train", "lenet5_modern", "--data", "fake:1x28x28:32:2", "--epochs", "1",
         "--batch-size", "16", "--device", "cpu", "--quiet", "--set", "plots=false",
         "--set", "tensorboard=false", "--no-report"]


def _one_line_error(capsys: pytest.CaptureFixture, argv: list[str], needle: str) -> None:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("r") / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(("extra", "needle"), [
    (["--workers", "-1"], "workers must be 0"),
    (["--set", "milestones=x"], "milestones takes a list of numbers"),
    (["--set", "model_args=3"], "model_args takes a table"),
    (["--set", "max_steps=many"], "max_steps takes a whole number"),
    (["--save-every", "-2"], "save_every"),
])
def test_bad_train_values(tmp_path: Path, capsys, extra: list[str], needle: str) -> None:
    _one_line_error(capsys, [*TRAIN, *extra, "--out", str(tmp_path / "x")], needle)
    assert not ck.holds_run(tmp_path / "x")


def test_out_that_is_a_file_or_under_one(tmp_path: Path, capsys, run_dir: Path) -> None:
    f = tmp_path / "afile"
    f.write_text("keep")
    _one_line_error(capsys, [*TRAIN, "--out", str(f)], "is a file")
    _one_line_error(capsys, [*TRAIN, "--out", str(f / "x")], "cannot create the run directory")
    _one_line_error(capsys, ["viz", "filters", "lenet5", "--out", str(f / "f.png")],
                    "cannot create")
    _one_line_error(capsys, ["viz", "activation-functions", "--out", str(tmp_path)],
                    "is a directory")
    _one_line_error(capsys, ["features", "lenet5_modern", "--data", "fake:1x28x28:32:2",
                             "--out", str(f / "f.safetensors")], "cannot create")
    _one_line_error(capsys, ["eval", str(run_dir), "--device", "cpu", "--out", str(f / "e")],
                    "cannot create")
    assert f.read_text() == "keep"


def test_unwritable_run_directory(tmp_path: Path, capsys, run_dir: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only file system, as the lock sees it (tests may run as root, whom chmod does
    not stop)."""
    from convzoo.runs import lock

    real = os.open

    def read_only(path, flags, *a, **kw):  # checkpoints are read with dir_fd=
        if flags & os.O_CREAT:
            raise PermissionError(errno.EROFS, "Read-only file system", str(path))
        return real(path, flags, *a, **kw)

    before = sorted(p.name for p in run_dir.iterdir())
    monkeypatch.setattr(lock.os, "open", read_only)
    _one_line_error(capsys, ["train", "--resume", str(run_dir), "--epochs", "2", "--quiet"],
                    "cannot write in the run directory")
    _one_line_error(capsys, [*TRAIN, "--out", str(tmp_path / "new")],
                    "cannot write in the run directory")
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_eval_of_a_read_only_run_scores_it_and_says_what_it_skipped(
        run_dir: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from convzoo.runs import metrics

    def refuse(*a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(metrics, "plot_confusion", refuse)
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "top-1 accuracy" in out and "confusion matrix not written" in out


@pytest.mark.parametrize(("argv", "needle"), [
    (["summary", "lenet5", "--input", "1000000000000"], "too large"),
    (["summary", "lenet5", "--num-classes", "0"], "--num-classes must be at least 1"),
])
def test_summary_bad_values(capsys, argv: list[str], needle: str) -> None:
    _one_line_error(capsys, argv, needle)


@pytest.mark.parametrize("command", [["eval"], ["predict"], ["report"], ["export"],
                                     ["finetune"], ["features"]])
def test_a_run_that_does_not_exist_is_named_as_such(capsys, tmp_path, command):
    missing = str(tmp_path / "no" / "such" / "run")
    argv = [*command, missing]
    if command[0] in ("predict",):
        argv.append(str(tmp_path / "x.png"))
    if command[0] in ("finetune", "features"):
        argv += ["--data", "fake:1x28x28:32:2"]
    if command[0] in ("export", "features"):
        argv += ["--out", str(tmp_path / ("out.onnx" if command[0] == "export" else "out"))]
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "does not exist" in err or "is not a directory" in err, err
    assert "unknown model" not in err


def test_a_run_that_never_starts_leaves_no_directory(capsys, tmp_path, monkeypatch):
    # without --out a run claims runs/MODEL-DATA-TIME first; data that is not there stops it
    # before it starts, and the directory it claimed goes again
    monkeypatch.chdir(tmp_path)
    argv = ["train", "lenet5_modern", "--data", "imagefolder:" + str(tmp_path / "no-photos"),
            "--epochs", "1", "--device", "cpu", "--quiet"]
    _one_line_error(capsys, argv, "no-photos")
    assert not any((tmp_path / "runs").glob("*")), list((tmp_path / "runs").iterdir())
