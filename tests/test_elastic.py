"""Under torchrun's agent a run resumes by itself, or refuses other settings in one line; at
another world size the position and the schedule are carried over by the stated rule (the
multi-process cases run in tests/test_multinode.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from convzoo.cli import main
from convzoo.train.config import TrainConfig
from convzoo.train.elastic import convert_position, restore_at_new_world, world_history
from convzoo.train.schedules import Schedule, make_optimizer

ARGS = ["train", "lenet5_modern", "--data", "fake:1x28x28:32:2", "--batch-size", "16",
        "--device", "cpu", "--no-report", "--set", "plots=false", "--set", "tensorboard=false"]


def test_under_an_agent_the_run_in_out_resumes_or_refuses(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("CONVZOO_THREADS", "1")
    out = str(tmp_path / "run")
    assert main([*ARGS, "--epochs", "1", "--out", out, "--quiet"]) == 0
    # outside torchrun a used --out is refused, as before
    assert main([*ARGS, "--epochs", "2", "--out", out, "--quiet"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job7")  # torchrun's agent started this process
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    capsys.readouterr()
    assert main([*ARGS, "--epochs", "2", "--out", out]) == 0  # the job started again
    said = capsys.readouterr().out
    assert f"resuming {out} at epoch 1, step 2 (its checkpoint found in --out, same " \
           "settings)" in said
    assert json.loads((Path(out) / "summary.json").read_text())["epochs"] == 2
    assert main([*ARGS, "--epochs", "2", "--out", out, "--lr", "0.5", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds a run with other settings: lr 0.5" in err, err


def test_the_position_is_the_images_used() -> None:
    assert convert_position(1, 2, 1) == (2, False)  # 1 batch of 2x16 = 2 batches of 16
    assert convert_position(3, 1, 2) == (1, True)   # 3 of 16 = 1.5 of 32: rounded down
    assert convert_position(0, 2, 1) == (0, False)
    assert world_history({"world_size": 2}) == [{"world_size": 2, "from_step": 0, "epoch": 0}]


@pytest.mark.parametrize("schedule", ["cosine", "onecycle", "step"])
def test_the_learning_rate_is_the_recipes_at_the_same_point(schedule: str) -> None:
    cfg = TrainConfig(model="lenet5_modern", data="fake", epochs=2, lr=0.1, schedule=schedule,
                      step_size=1)

    def sched(spe: int) -> tuple[torch.optim.Optimizer, Schedule]:
        opt = make_optimizer(torch.nn.Linear(2, 2), cfg)
        return opt, Schedule(opt, cfg, spe, 2 * spe)

    old_opt, old = sched(40)  # world size 2: 40 steps an epoch, 50 taken
    for _ in range(50):
        old_opt.step()
        old.after_step()
    state = {"optimizer": old_opt.state_dict(), "schedule": old.state_dict()}
    new_opt, new = sched(80)  # world size 1: 80 steps an epoch, at step 100 of them
    restore_at_new_world(new, new_opt, state, 100)
    # one-cycle's phases end at whole steps, a little apart at other step counts
    assert new.lr == pytest.approx(old.lr, rel=0.03)
    lrs = []
    for _ in range(60):  # and it goes on to the schedule's end
        new_opt.step()
        new.after_step()
        lrs.append(new.lr)
    ref_opt, ref = sched(80)
    for _ in range(160):
        ref_opt.step()
        ref.after_step()
    assert lrs[-1] == pytest.approx(ref.lr, rel=1e-6, abs=1e-12)


def test_a_lock_from_an_earlier_restart_of_the_job_is_taken_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convzoo.errors import UserInputError
    from convzoo.runs.lock import RunLock

    # rank 0 killed on another node, its lock left behind
    (tmp_path / ".lock").write_text(json.dumps({
        "pid": 1, "host": "node-that-is-gone", "start": "1", "since": "then",
        "elastic": {"run_id": "job7", "restart": 0}}))
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job7")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    with pytest.raises(UserInputError, match="in use by another run"):
        RunLock(tmp_path).acquire()  # the same start of the job: not ours to take
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job8")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    with pytest.raises(UserInputError, match="in use by another run"):
        RunLock(tmp_path).acquire()  # another job's
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job7")
    lock = RunLock(tmp_path).acquire()  # the job's next restart
    assert lock.took_over["host"] == "node-that-is-gone"
    assert json.loads((tmp_path / ".lock").read_text())["elastic"] == {
        "run_id": "job7", "restart": 1}
    lock.release()
