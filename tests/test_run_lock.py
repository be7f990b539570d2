"""One writer per run directory: a second run is refused at once naming the holder and the
directory stays the first run's; a stale lock is taken over; what a kill mid-swap leaves is
still a run."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convzoo.cli import main
from convzoo.runs import checkpoint as ck

DATA = ["--data", "fake:1x28x28:32:2", "--batch-size", "16", "--device", "cpu", "--quiet",
        "--set", "plots=false", "--set", "tensorboard=false", "--no-report"]
SLOW = ("import sys, time\nfrom convzoo.train import run\nd = run.Run._decide\n"
        "def slow(self, i):\n    time.sleep(0.3)\n    return d(self, i)\n"
        "run.Run._decide = slow\nfrom convzoo.cli import main\nsys.exit(main(sys.argv[1:]))\n")


def test_two_runs_on_one_directory(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-c", SLOW, "train", "lenet5_modern", *DATA,
                          "--epochs", "3", "--out", str(out)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / ".lock").is_file() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # the lock's record written
    for argv in (["train", "lenet5_modern", *DATA, "--epochs", "1", "--out", str(out)],
                 ["train", "--resume", str(out), "--quiet"]):
        if argv[1] == "--resume":
            while not ck.holds_run(out) and p.poll() is None:
                time.sleep(0.02)
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"in use by another run (pid {p.pid} on host {socket.gethostname()}" in err, err
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 3
    assert ck.load_checkpoint(out, prefer="last").meta["step"] == 6  # the first run's alone
    assert ck.load_checkpoint(out, prefer="best").meta["config"]["epochs"] == 3
    assert not (out / ".lock").exists()


def test_a_stale_lock_is_taken_over(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                           "since": "earlier"}))
    assert main(["train", "lenet5_modern", *DATA, "--epochs", "1", "--out", str(out)]) == 0
    assert not (out / ".lock").exists() and ck.holds_run(out)


def test_a_directory_with_only_last_prev_is_a_run(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(["train", "lenet5_modern", *DATA, "--epochs", "1", "--out", str(out)]) == 0
    shutil.rmtree(out / "best")
    os.replace(out / "last", out / "last.prev")  # a kill between the swap's renames
    capsys.readouterr()
    assert main(["train", "lenet5_modern", *DATA, "--epochs", "1", "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "last.prev" / "checkpoint.json").is_file()  # untouched
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    assert ck.load_checkpoint(out, prefer="last").meta["epoch"] == 2
