"""SIGTERM and SIGINT: the step finishes, `last` is saved, summary.json says "interrupted" with
the step, the exit code is 128 + signal, and resuming gives the run that never stopped. A
second signal exits at once, leaving a valid checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from convzoo.cli import main
from convzoo.runs import checkpoint as ck
from convzoo.runtime.signals import StopOnSignal, TrainingInterrupted
from convzoo.train.run import Run, read_steps

ARGS = ["lenet5_modern", "--data", "fake:1x28x28:64:4", "--val-split", "0",
        "--epochs", "2", "--batch-size", "16",
        "--device", "cpu", "--save-minutes", "0", "--quiet",
        "--set", "plots=false", "--set", "tensorboard=false", "--no-report"]
SLOW_STEPS = (  # each optimiser step waits a little, so a signal lands in the middle of the run
    "import sys, time\n"
    "from convzoo.train import run\n"
    "decide = run.Run._decide\n"
    "def slow(self, i):\n"
    "    time.sleep(0.15)\n"
    "    return decide(self, i)\n"
    "run.Run._decide = slow\n"
    "from convzoo.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n")


@pytest.fixture(autouse=True)
def _threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVZOO_THREADS", "1")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    os.environ["CONVZOO_THREADS"] = "1"
    try:
        assert main(["train", *ARGS, "--out", str(out)]) == 0
    finally:
        del os.environ["CONVZOO_THREADS"]
    return out


def _same(a: Path, b: Path) -> None:
    ca, cb = ck.load_checkpoint(a, prefer="last"), ck.load_checkpoint(b, prefer="last")
    assert ca.meta["step"] == cb.meta["step"] == 8
    for k, v in ca.model_state.items():
        assert torch.equal(v, cb.model_state[k]), k
    assert read_steps(a) == read_steps(b)


def _start(out: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", SLOW_STEPS, "train", *ARGS, "--out", str(out)],
                         env={**os.environ, "CONVZOO_THREADS": "1"}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while p.poll() is None and time.monotonic() < deadline:
        if (out / "steps.csv").is_file() and len((out / "steps.csv").read_text().split()) > 1 \
                or (out / ".lock").is_file() and (out / "config.json").is_file():
            break
        time.sleep(0.02)
    time.sleep(0.3)  # inside the first epoch's steps
    assert p.poll() is None, p.communicate()
    return p


def test_sigterm_saves_at_the_next_step_and_resumes_exactly(reference: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "run"
    p = _start(out)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM" in err and "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM"
    saved = ck.load_checkpoint(out, prefer="last")
    assert 0 < summary["step"] == saved.meta["step"] < 8
    assert not (out / ".lock").exists()
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    _same(reference, out)


def test_a_second_sigint_exits_at_once_and_leaves_a_valid_checkpoint(reference: Path,
                                                                     tmp_path: Path) -> None:
    out = tmp_path / "run"
    p = _start(out)
    p.send_signal(signal.SIGINT)
    time.sleep(0.05)  # two at once would be one pending signal
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGINT, err
    assert "second SIGINT" in err and "Traceback" not in err
    if ck.holds_run(out):
        ck.load_checkpoint(out, prefer="last")  # valid (checked digests)
    assert main(["train", "--resume", str(out), "--quiet"] if ck.holds_run(out)
                else ["train", *ARGS, "--out", str(out)]) == 0  # the lock was let go or is stale
    _same(reference, out)


@pytest.fixture
def terminal_sigint():
    """SIGINT as a terminal's Python has it (KeyboardInterrupt). A process started with it
    ignored (a job in a script's background) keeps it ignored, as would a test worker whose
    earlier tests left it so; put back afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def test_sigint_in_process_stops_with_130_and_resumes_exactly(
        reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture, terminal_sigint: None) -> None:
    decide = Run._decide

    def ctrl_c_at_step_3(self, i):
        if self.state.step == 3 and not self.stop.requested:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs before the step is over
        return decide(self, i)

    monkeypatch.setattr(Run, "_decide", ctrl_c_at_step_3)
    out = tmp_path / "run"
    assert main(["train", *ARGS, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "stopped by SIGINT at step 3" in err and len(err.strip().splitlines()) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["step"] == 3
    assert ck.load_checkpoint(out, prefer="last").extra_state()["loader"] == {
        "epoch": 0, "batch": 3}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    monkeypatch.setattr(Run, "_decide", decide)
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    _same(reference, out)


def test_stop_request_without_a_signal() -> None:
    stop = StopOnSignal()
    assert not stop.requested
    stop.request(signal.SIGTERM)
    stop.request(signal.SIGINT)  # the first one counts
    assert stop.signum == signal.SIGTERM
    e = TrainingInterrupted("x", signal.SIGTERM, 5)
    assert e.exit_code == 143 and e.step == 5
