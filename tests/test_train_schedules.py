"""Learning-rate schedules at known steps, and their state surviving a checkpoint."""

from __future__ import annotations

import json
import math

import pytest
import torch

from convzoo.errors import UserInputError
from convzoo.runs.checkpoint import join_state, split_state
from convzoo.train.config import TrainConfig
from convzoo.train.schedules import Schedule, make_optimizer

SPE = 10  # steps per epoch


def _schedule(epochs: int = 10, **kw) -> Schedule:
    cfg = TrainConfig(lr=1.0, momentum=0.9, weight_decay=0.0, epochs=epochs, **kw)
    model = torch.nn.Linear(2, 2)
    return Schedule(make_optimizer(model, cfg), cfg, SPE, epochs * SPE)


def _lrs(s: Schedule, steps: int, epoch_errors: list[float] | None = None) -> list[float]:
    out = []
    for i in range(steps):
        out.append(s.lr)
        s.optimizer.step()
        s.after_step()
        if (i + 1) % SPE == 0:
            e = (i + 1) // SPE - 1
            s.after_epoch(epoch_errors[e] if epoch_errors else 0.5)
    return out


def test_step_divides_every_step_size_epochs() -> None:
    lrs = _lrs(_schedule(schedule="step", step_size=2, gamma=0.1), 60)
    assert lrs[0] == lrs[19] == 1.0
    assert lrs[20] == pytest.approx(0.1) and lrs[39] == pytest.approx(0.1)
    assert lrs[40] == pytest.approx(0.01)


def test_multistep_in_epochs_and_in_steps() -> None:
    lrs = _lrs(_schedule(schedule="multistep", milestones=[1, 3]), 40)
    assert lrs[9] == 1.0 and lrs[10] == pytest.approx(0.1)
    assert lrs[29] == pytest.approx(0.1) and lrs[30] == pytest.approx(0.01)
    lrs = _lrs(_schedule(schedule="multistep", schedule_unit="step", milestones=[7, 25]), 30)
    assert lrs[6] == 1.0 and lrs[7] == pytest.approx(0.1) and lrs[25] == pytest.approx(0.01)


def test_plateau_divides_by_ten_when_the_error_stops_improving() -> None:
    errors = [0.5, 0.4, 0.4, 0.4, 0.4, 0.3, 0.3, 0.3, 0.3]
    lrs = _lrs(_schedule(schedule="plateau", patience=1), 90, errors)
    per_epoch = lrs[::SPE]
    # epochs 3 and 4 do not improve on 0.4: after the second bad epoch the rate is /10
    assert per_epoch[:4] == [1.0, 1.0, 1.0, 1.0]
    assert per_epoch[4] == pytest.approx(0.1)
    # 0.3 improves (epoch 6), then epochs 7 and 8 do not: /10 again from epoch 9
    assert per_epoch[7] == pytest.approx(0.1) and per_epoch[8] == pytest.approx(0.01)


def test_cosine_reaches_half_at_the_middle_and_min_at_the_end() -> None:
    lrs = _lrs(_schedule(schedule="cosine", epochs=2), 20)
    assert lrs[0] == 1.0
    assert lrs[10] == pytest.approx(0.5)
    assert lrs[19] == pytest.approx(0.5 * (1 + math.cos(math.pi * 19 / 20)))


def test_onecycle_rises_then_falls() -> None:
    s = _schedule(schedule="onecycle", epochs=4, pct_start=0.25, div_factor=10,
                  final_div_factor=100)
    lrs = _lrs(s, 40)
    assert lrs[0] == pytest.approx(0.1)
    peak = max(lrs)
    assert peak == pytest.approx(1.0) and lrs.index(peak) == 9  # 0.25 * 40 - 1
    assert lrs[-1] < 0.01
    s.after_step()  # past the end: stays put instead of failing
    assert s.lr == pytest.approx(0.001)


def test_linear_warmup_then_the_main_schedule() -> None:
    lrs = _lrs(_schedule(schedule="step", step_size=3, warmup_epochs=1, warmup_start=0.1), 50)
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[5] == pytest.approx(0.1 + 0.9 * 5 / 10)
    assert lrs[10] == pytest.approx(1.0)
    # the step schedule counts from the end of warm-up: 3 epochs of 10 steps
    assert lrs[39] == pytest.approx(1.0) and lrs[40] == pytest.approx(0.1)


def test_onecycle_refuses_an_extra_warmup() -> None:
    with pytest.raises(UserInputError, match="one-cycle"):
        _schedule(schedule="onecycle", warmup_epochs=1)


@pytest.mark.parametrize("name", ["step", "cosine", "onecycle", "plateau", "multistep"])
def test_state_survives_json_and_continues_identically(name: str) -> None:
    kw = {"milestones": [2]} if name == "multistep" else {}
    a = _schedule(schedule=name, warmup_epochs=0 if name == "onecycle" else 1, **kw)
    _lrs(a, 25)
    tensors: dict = {}
    state = json.loads(json.dumps(split_state(a.state_dict(), "s.", tensors)))
    opt_state = json.loads(json.dumps(split_state(a.optimizer.state_dict(), "o.", tensors)))
    b = _schedule(schedule=name, warmup_epochs=0 if name == "onecycle" else 1, **kw)
    b.load_state_dict(join_state(state, tensors))
    b.optimizer.load_state_dict(join_state(opt_state, tensors))
    assert _lrs(a, 45) == _lrs(b, 45)


def test_no_weight_decay_on_biases_and_norms() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    opt = make_optimizer(model, TrainConfig(no_wd_bias_norm=True, weight_decay=0.1))
    decays = sorted((g["weight_decay"], len(g["params"])) for g in opt.param_groups)
    assert decays == [(0.0, 3), (0.1, 1)]
    with pytest.raises(UserInputError, match="unknown optimizer"):
        make_optimizer(model, TrainConfig(optimizer="lbfgs2"))


def _cosine_run(epochs: int, spe: int = 10):
    model = torch.nn.Linear(2, 2)
    cfg = TrainConfig(model="x", data="x", epochs=epochs, lr=0.05, schedule="cosine",
                      min_lr=0.0)
    opt = make_optimizer(model, cfg)
    return opt, Schedule(opt, cfg, spe, epochs * spe)


def test_a_cosine_run_extended_on_resume_never_climbs_back():
    opt, sched = _cosine_run(1)
    lrs = []
    for _ in range(10):
        opt.step()
        sched.after_step()
        lrs.append(sched.lr)
    tensors: dict = {}
    state = json.loads(json.dumps(split_state(sched.state_dict(), "s.", tensors)))
    opt_state = json.loads(json.dumps(split_state(opt.state_dict(), "o.", tensors)))

    opt2, longer = _cosine_run(3)
    opt2.load_state_dict(join_state(opt_state, tensors))
    longer.load_state_dict(join_state(state, tensors))
    assert longer.note and "re-planned" in longer.note
    assert longer.lr == lrs[-1]
    for _ in range(20):
        opt2.step()
        longer.after_step()
        lrs.append(longer.lr)
    assert all(b <= a + 1e-12 for a, b in zip(lrs, lrs[1:])), lrs  # never rises
    # ... and saved again, the re-planned schedule resumes as it is, with no second re-plan
    state2 = json.loads(json.dumps(split_state(longer.state_dict(), "t.", tensors)))
    opt_state2 = json.loads(json.dumps(split_state(opt2.state_dict(), "p.", tensors)))
    opt3, again = _cosine_run(3)
    opt3.load_state_dict(join_state(opt_state2, tensors))
    again.load_state_dict(join_state(state2, tensors))
    assert again.note is None and again.lr == longer.lr


def test_a_cosine_run_resumed_at_its_own_length_is_not_replanned():
    opt, sched = _cosine_run(2)
    for _ in range(7):
        opt.step()
        sched.after_step()
    tensors: dict = {}
    state = json.loads(json.dumps(split_state(sched.state_dict(), "s.", tensors)))
    opt_state = json.loads(json.dumps(split_state(opt.state_dict(), "o.", tensors)))
    opt2, same = _cosine_run(2)
    opt2.load_state_dict(join_state(opt_state, tensors))
    same.load_state_dict(join_state(state, tensors))
    assert same.note is None
    for _ in range(13):
        opt.step(), sched.after_step(), opt2.step(), same.after_step()
        assert same.lr == sched.lr
