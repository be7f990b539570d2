"""kill -9 at seeded random moments, inside steps and inside checkpoint writes: after every
kill a valid checkpoint is there (or none was written yet), the next start resumes it, and the
run that was killed again and again ends with the weights and per-step losses of the run that
never was."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from convzoo.cli import main
from convzoo.runs import checkpoint as ck
from convzoo.train.run import read_steps

ARGS = ["lenet5_modern", "--data", "fake:1x28x28:64:4", "--val-split", "0",
        "--epochs", "3", "--batch-size", "16",
        "--device", "cpu", "--save-every", "1", "--save-minutes", "0", "--quiet",
        "--set", "plots=false", "--set", "tensorboard=false", "--no-report"]
# Every file a save writes waits a little first, so kills land inside writes and swaps too.
SLOW_WRITER = (
    "import os, sys, time\n"
    "from convzoo.runs import checkpoint as ck\n"
    "write = ck._write_bytes\n"
    "def slow(path, data):\n"
    "    time.sleep(float(os.environ['WRITE_DELAY']))\n"
    "    write(path, data)\n"
    "ck._write_bytes = slow\n"
    "from convzoo.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n")
KILLS = 7


def _rows(out: Path) -> int:
    try:
        return len((out / "steps.csv").read_text().splitlines())
    except OSError:
        return 0


def test_kill_9_again_and_again_then_resume_exactly(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CONVZOO_THREADS", "1")
    ref = tmp_path / "ref"
    assert main(["train", *ARGS, "--out", str(ref)]) == 0  # never stopped (in this process)

    out = tmp_path / "run"
    env = {**os.environ, "CONVZOO_THREADS": "1", "WRITE_DELAY": "0.04"}
    rng = random.Random(10)
    kills = resumes = 0
    for _ in range(KILLS + 3):
        argv = ["train", "--resume", str(out), "--quiet"] if ck.holds_run(out) else \
            ["train", *ARGS, "--out", str(out)]
        resumes += argv[1] == "--resume"
        p = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, *argv], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if kills < KILLS:
            # once this process has saved a step (startup takes seconds), a random moment
            # within the next few steps: ~0.2 s a step, most of it in the save
            before = _rows(out)
            deadline = time.monotonic() + 60
            while _rows(out) <= before and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.5))
        if kills < KILLS and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
            if ck.holds_run(out):  # a valid checkpoint survived the kill
                got = ck.load_checkpoint(out, prefer="last")
                assert got.meta["step"] >= 0
                assert ck.read_tensors(got.path / "model.safetensors")
            continue
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        break
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed"
    a, b = ck.load_checkpoint(ref, prefer="last"), ck.load_checkpoint(out, prefer="last")
    assert a.meta["step"] == b.meta["step"] == 12
    for k, v in a.model_state.items():
        assert torch.equal(v, b.model_state[k]), k
    assert read_steps(ref) == read_steps(out)
    # the run may finish before the last kills come: most of them must have landed
    assert kills >= KILLS - 3 and resumes >= kills - 1, (kills, resumes)
    print(f"kills survived: {kills}, exact resumes: {resumes}")
    # nothing a killed save left behind remains, and the lock is gone
    assert not [p.name for p in out.iterdir() if p.name.startswith(".last.")]
    assert not (out / ".lock").exists()
