"""Malformed flags and Ctrl-C at start-up: one line on stderr and exit code 2 (130 for an
interrupt), never a traceback; a resume at another thread count says exactness is lost."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from convzoo.cli import main

TRAIN = ["train", "lenet5_modern", "--data", "fake:1x28x28:32:2", "--epochs", "1",
         "--batch-size", "16", "--device", "cpu", "--quiet", "--set", "plots=false",
         "--set", "tensorboard=false", "--no-report"]


@pytest.fixture(autouse=True)
def _threads_as_they_were(monkeypatch):
    """A run sets torch's thread count: give the next test the usual one."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("r") / "run"
    assert main([*TRAIN, "--out", str(out), "--threads", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def garbage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    f = tmp_path_factory.mktemp("w") / "garbage.pth"
    f.write_bytes(b"not a weights file at all")
    return f


# (argv with RUN, GARBAGE and OUT standing for the fixtures, a word the error must hold)
CASES = [
    (["train", "lenet5_modern", "--threads", "0", "--data", "fake:1x28x28:8:2", "--out", "OUT"],
     "--threads"),
    (["train", "lenet5_modern", "--threads", "99999999", "--data", "fake:1x28x28:8:2",
      "--out", "OUT"], "--threads"),
    (["summary", "lenet5", "--input", "0x32x32"], "at least 1 channel"),
    (["summary", "lenet5", "--input", "1x0x32"], "positive"),
    (["summary", "lenet5", "--input", "0"], "positive"),
    (["train", "lenet5_modern", "--data", "fake:3x32x32:99999999999:10", "--out", "OUT"],
     "memory"),
    (["train", "lenet5_modern", "--data", "fake:1x28x28:8:99999999999", "--out", "OUT"],
     "memory"),
    (["train", "lenet5_modern", "--data", "fake:0x28x28:8:2", "--out", "OUT"], "channel"),
    (["train", "lenet5_modern", "--data", "fake:1x28x28:8:2", "--set", "seed=1e400",
      "--out", "OUT"], "seed takes a whole number"),
    (["train", "lenet5_modern", "--data", "fake:1x28x28:8:2", "--set", "seed=2.5",
      "--out", "OUT"], "seed takes a whole number"),
    (["train", "lenet5_modern", "--data", "fake:1x28x28:8:2", "--set",
      "seed=100000000000000000000000", "--out", "OUT"], "too large"),
    (["train", "lenet5_modern", "--data", "fake:1x28x28:8:2", "--set", "lr=1e400",
      "--out", "OUT"], "finite"),
    (["eval", "RUN", "--tta", "multiscale:999999999"], "up to 4096"),
    (["eval", "RUN", "--tta", "multiscale:0"], "positive"),
    (["report", "RUN", "--out", ""], "--out is empty"),
    (["eval", "lenet5", "--weights", "GARBAGE", "--data", "fake:1x32x32:8:10"],
     "not a PyTorch weights file"),
]


@pytest.mark.parametrize(("argv", "needle"), CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_malformed_flags_give_one_line_and_exit_2(capsys, tmp_path, monkeypatch, run_dir,
                                                  garbage, argv, needle):
    monkeypatch.chdir(tmp_path)  # whatever a case would write by default lands here
    fill = {"RUN": str(run_dir), "GARBAGE": str(garbage), "OUT": str(tmp_path / "o")}
    code, err = _run(capsys, [fill.get(a, a) for a in argv])
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err, err
    assert "torch" not in err.lower() or "pytorch weights" in err.lower(), err
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_ctrl_c_while_starting_gives_130_and_one_line(capsys, monkeypatch):
    import convzoo.cli as cli

    def interrupted(only=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    for argv in (["eval", "x"], ["list"], ["train", "lenet5"]):
        code, err = _run(capsys, argv)
        assert code == 130 and err.strip() == "convzoo: interrupted", err


# Ctrl-C (a real SIGINT) while the command's modules or torch are being imported: an audit
# hook raises it at that moment, so the test does not depend on timing.
PROBE = """
import runpy, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal's Python has it
target = sys.argv[1]
def hook(event, args):
    if event == "import" and args[0] == target:
        signal.raise_signal(signal.SIGINT)
sys.addaudithook(hook)
sys.argv = ["convzoo", *sys.argv[2:]]
runpy.run_module("convzoo", run_name="__main__")
"""


@pytest.mark.parametrize(("module", "argv"), [
    ("torch", ["list"]),
    ("convzoo.analysis", ["list"]),
    ("torch", ["eval", "nowhere"]),
    ("torch", ["train", "lenet5_modern", "--data", "fake:1x28x28:8:2"]),
    ("convzoo.cli", ["list"]),
])
def test_a_real_sigint_during_start_up(tmp_path, module, argv):
    p = subprocess.run([sys.executable, "-c", PROBE, module, *argv], capture_output=True,
                       text=True, timeout=300, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert p.returncode == 130, p.stderr[-2000:]
    assert p.stderr.strip() == "convzoo: interrupted", p.stderr[-2000:]


def test_a_resume_at_another_thread_count_says_exactness_is_lost(capsys, caplog, tmp_path,
                                                                  run_dir):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    with caplog.at_level(logging.WARNING, logger="convzoo.train"):
        code, err = _run(capsys, ["train", "--resume", str(run), "--epochs", "2", "--quiet",
                                  "--no-report", "--threads", "2"])
    assert code == 0, err
    assert "not match an uninterrupted run bit for bit" in caplog.text
    assert "resuming at 2 threads, not the run's 1" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="convzoo.train"):  # without it: the run's own
        code, err = _run(capsys, ["train", "--resume", str(run), "--epochs", "3", "--quiet",
                                  "--no-report"])
    assert code == 0 and "bit for bit" not in caplog.text, err
