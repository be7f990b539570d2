"""Training under torchrun: two CPU processes with gloo, launched as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from convzoo.evaluation.checkpoint_eval import evaluate_checkpoint
from convzoo.runtime import distributed as dd

dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

DATA = "fake:1x28x28:256:4"


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)


def test_train_under_torchrun(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = torchrun("-m", "convzoo", "train", "lenet5_modern", "--data", DATA, "--epochs", "2",
                 "--device", "cpu", "--out", str(out), "--quiet", "--batch-size", "32",
                 cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("test top-1 accuracy") == 1  # rank 1 prints nothing
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["processes"] == 2
    assert 0 <= summary["test"]["top1"] <= 1
    # only rank 0 wrote: one summary, one metrics file, in the run directory
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("summary.json")] == [
        Path("run/summary.json")]
    assert len(list(tmp_path.rglob("metrics.csv"))) == 1
    assert len((out / "metrics.csv").read_text().splitlines()) == 3  # header + 2 epochs
    # the checkpoint is a plain one, and the sharded evaluation summed over the processes
    # equals one process evaluating the whole test split with it
    r1 = evaluate_checkpoint(str(out), which="last", device="cpu")
    assert r1["n"] == summary["test"]["n"]
    assert r1["top1"] == summary["test"]["top1"]
    assert r1["loss"] == pytest.approx(summary["test"]["loss"], rel=1e-5)


SCRIPT = """
import os, sys, torch
from convzoo.registry import create_model
from convzoo.train.config import TrainConfig
from convzoo.train.loop import fit

out, data = sys.argv[1:3]
model = create_model("lenet5_modern", num_classes=4, in_channels=1)
cfg = TrainConfig(model="lenet5_modern", data=data, epochs=1, device="cpu", batch_size=32,
                  out=out + "/run", plots=False, tensorboard=False)
fit(cfg, model=model)
torch.save(model.state_dict(), f"{out}/rank{os.environ['RANK']}.pt")
"""


def test_ranks_end_with_the_same_weights(tmp_path: Path) -> None:
    (tmp_path / "ranks.py").write_text(SCRIPT)
    r = torchrun(str(tmp_path / "ranks.py"), str(tmp_path), DATA, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    saved = evaluate_checkpoint(str(tmp_path / "run"), which="last", device="cpu")
    assert saved["n"] > 0


def test_single_process_helpers_are_no_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert not dd.launched() and dd.init_from_env(torch.device("cpu")) is None
    assert dd.is_main() and dd.shard_len(10, None) == 10
    bad = torch.tensor(-1)
    assert dd.first_bad_step(bad) is bad
    t = torch.ones(3)
    dd.all_reduce_sum_(t)
    assert t.tolist() == [1.0, 1.0, 1.0]
    monkeypatch.setenv("RANK", "1")
    assert not dd.is_main()
    assert dd.shard_len(11, dd.Dist(1, 1, 2, torch.device("cpu"), False)) == 5
