"""Preemption: a cluster sends SIGTERM (a terminal SIGINT) to the whole process group, image-folder
loader workers included. The workers ignore it, the main process finishes its step (its
evaluation, its report), saves `last`, says "interrupted" and exits 128 + signal; resuming
gives the run that never stopped."""

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
from convzoo.data import workers
from convzoo.runs import checkpoint as ck
from convzoo.train.run import read_steps
from image_folders import striped_folder

# Pause once, at the place named, so the signal lands there: in a training step (loader workers
# prefetching), inside the last evaluation after its first batch (its workers running), in the
# report.
HOOK = """
import os, sys, time, pathlib
marker, where = pathlib.Path(os.environ["MARKER"]), os.environ["WHERE"]
sent = marker.with_name("sent")

def pause():
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        deadline = time.monotonic() + 20
        while not sent.exists() and time.monotonic() < deadline:  # the test has signalled
            time.sleep(0.02)

from convzoo.data import workers
workers.workers_for = lambda asked: asked  # two workers, whatever the load on the cores
from convzoo.train import run
if where == "epoch":
    decide = run.Run._decide
    def slow(self, i):
        if self.state.step == 2:
            pause()
        return decide(self, i)
    run.Run._decide = slow
elif where == "eval":  # the last epoch's: the test score and summary are left to do
    evaluate, calls = run.evaluate, []
    def slow(net, batches, *a, **k):
        calls.append(1)
        if len(calls) < 2:
            return evaluate(net, batches, *a, **k)
        def paused():
            for b, item in enumerate(batches):
                yield item
                if b == 0:
                    pause()
        return evaluate(net, paused(), *a, **k)
    run.evaluate = slow
else:
    import convzoo.report as report
    build = report.build_report
    def slow(*a, **k):
        pause()
        return build(*a, **k)
    report.build_report = slow
from convzoo.cli import main
from convzoo.data import workers
sys.exit(main(sys.argv[1:]))
"""


def _args(data: str) -> list[str]:
    # 36 images, batches of 8, two loader worker processes
    return ["lenet5_modern", "--data", data, "--epochs", "2", "--batch-size", "8",
            "--workers", "2", "--device", "cpu", "--save-minutes", "0", "--quiet",
            "--set", "plots=false", "--set", "tensorboard=false"]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> str:
    return striped_folder(tmp_path_factory.mktemp("images"), 28)


@pytest.fixture(scope="module")
def reference(images: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVZOO_THREADS", "1")
        mp.setattr(workers, "workers_for", lambda asked: asked)
        assert main(["train", *_args(images), "--no-report", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("where,sig", [("epoch", signal.SIGTERM), ("eval", signal.SIGINT),
                                       ("report", signal.SIGTERM)])
def test_signal_to_the_process_group_saves_and_resumes_exactly(
        images: str, reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        where: str, sig: signal.Signals) -> None:
    monkeypatch.setenv("CONVZOO_THREADS", "1")
    # the loader caps its workers at the cores free; this test is about two of them
    monkeypatch.setattr(workers, "workers_for", lambda asked: asked)
    out, marker = tmp_path / "run", tmp_path / "marker"
    env = {**os.environ, "MARKER": str(marker), "WHERE": where}
    # its own session, as a batch job's: the signal goes to the group, workers included
    p = subprocess.Popen([sys.executable, "-c", HOOK, "train", *_args(images), "--out", str(out)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not marker.exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), p.communicate(timeout=30)
        group = os.getpgid(p.pid)
        assert group == p.pid
        if where != "report":  # the loader's workers are in the group too
            kids = Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()
            assert len(kids) >= 2, kids
        os.killpg(group, sig)  # kill -TERM -PGID
        (tmp_path / "sent").touch()
        stdout, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 128 + sig, err
    assert "Traceback" not in err and "killed by signal" not in err, err
    summary = json.loads((out / "summary.json").read_text())
    if where == "report":  # training had completed; the report was finished before exiting
        assert summary["status"] == "completed" and (out / "report.html").is_file()
        assert "received while writing the report" in stdout
        return
    assert summary["status"] == "interrupted" and summary["signal"] == sig.name
    saved = ck.load_checkpoint(out, prefer="last")
    per_epoch = ck.load_checkpoint(reference, prefer="last").meta["step"] // 2  # 3
    assert summary["step"] == saved.meta["step"] == (2 if where == "epoch" else 2 * per_epoch)
    if where == "epoch":  # saved inside the epoch, at the loader's position
        assert saved.extra_state()["loader"] == {"epoch": 0, "batch": 2}
    assert not (out / ".lock").exists()
    assert main(["train", "--resume", str(out), "--quiet", "--no-report"]) == 0
    a, b = ck.load_checkpoint(reference, prefer="last"), ck.load_checkpoint(out, prefer="last")
    assert a.meta["step"] == b.meta["step"] == 2 * per_epoch
    for k, v in a.model_state.items():
        assert torch.equal(v, b.model_state[k]), k
    assert read_steps(reference) == read_steps(out)
    ra = json.loads((reference / "summary.json").read_text())
    rb = json.loads((out / "summary.json").read_text())
    assert rb["status"] == "completed" and ra["test"] == rb["test"]
