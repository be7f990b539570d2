"""Checkpoints on disk: the swap keeps a valid `last` at every moment, loading falls back to
`last.prev`, killed saves' leftovers are removed, a full disk keeps the previous checkpoint,
mid-epoch state and every RNG round-trip, and one writer holds a run directory."""

import errno
import json
import logging
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from convzoo.errors import ConvzooError, UserInputError
from convzoo.runs import checkpoint as ck
from convzoo.runs.lock import RunLock, holder_of


def _model(value: float) -> nn.Module:
    m = nn.Linear(3, 2)
    with torch.no_grad():
        m.weight.fill_(value)
    return m


def _save(run: Path, value: float, name: str = "last", **kw) -> Path:
    return ck.save_checkpoint(run / name, model=_model(value), meta={"epoch": int(value)}, **kw)


def _weight(ckpt: ck.Checkpoint) -> float:
    return float(ckpt.model_state["weight"][0, 0])


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_swap_keeps_the_previous_checkpoint_as_prev(tmp_path):
    for v in (1.0, 2.0, 3.0):
        _save(tmp_path, v)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["last", "last.prev"]  # nothing temporary is left
    c = ck.load_checkpoint(tmp_path, prefer="last")
    assert c.path == tmp_path / "last" and c.fallback is None and _weight(c) == 3.0
    assert _weight(ck.load_checkpoint(tmp_path / "last.prev")) == 2.0
    assert c.meta["version"] == ck.VERSION and set(c.meta["sha256"]) == {"model.safetensors",
                                                                         "state.safetensors"}


def test_a_kill_between_the_renames_falls_back_to_prev(tmp_path, caplog):
    _save(tmp_path, 1.0)
    _save(tmp_path, 2.0)
    # the state a kill between `last -> last.prev` and `new -> last` leaves
    os.replace(tmp_path / "last", tmp_path / ".last.tmp-999999999")
    with caplog.at_level(logging.WARNING, logger="convzoo.train"):
        c = ck.load_checkpoint(tmp_path, prefer="last")
    assert c.path == tmp_path / "last.prev" and _weight(c) == 1.0
    assert "last.prev" in c.fallback and "last is missing" in c.fallback
    assert "instead of" in caplog.text
    assert ck.holds_run(tmp_path)
    # `RUN/last` named directly while it is missing stands in with its .prev too
    assert _weight(ck.load_checkpoint(tmp_path / "last")) == 1.0


@pytest.mark.parametrize("damage", ["truncate", "flip", "json"])
def test_a_damaged_last_falls_back_to_prev(tmp_path, damage):
    _save(tmp_path, 1.0)
    _save(tmp_path, 2.0)
    f = tmp_path / "last" / ("checkpoint.json" if damage == "json" else "model.safetensors")
    data = bytearray(f.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 3]
    elif damage == "flip":
        data[-1] ^= 0x01  # inside a weight: only the digest can tell
    else:
        data = data[:20]
    f.write_bytes(bytes(data))
    c = ck.load_checkpoint(tmp_path, prefer="last")
    assert c.path.name == "last.prev" and _weight(c) == 1.0
    assert "corrupt" in c.fallback and str(f) in c.fallback


def test_a_flipped_bit_in_a_named_checkpoint_is_caught_on_reading(tmp_path):
    _save(tmp_path, 1.0)
    f = tmp_path / "last" / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-2] ^= 0x10
    f.write_bytes(bytes(data))
    with pytest.raises(UserInputError, match="corrupt or truncated.*SHA-256") as e:
        ck.load_checkpoint(tmp_path / "last")  # named directly: no fallback
    assert str(f) in str(e.value) and "\n" not in str(e.value)


def test_nothing_usable_is_one_error_listing_why(tmp_path):
    _save(tmp_path, 1.0)
    (tmp_path / "last" / "model.safetensors").write_bytes(b"")
    with pytest.raises(UserInputError, match="no usable checkpoint") as e:
        ck.load_checkpoint(tmp_path, prefer="last")
    assert "\n" not in str(e.value)


def test_old_style_leftovers_are_a_run_and_load(tmp_path):
    assert not ck.holds_run(tmp_path)
    _save(tmp_path, 4.0)
    os.replace(tmp_path / "last", tmp_path / ".last.old")  # what the old swap left mid-way
    assert ck.holds_run(tmp_path)
    c = ck.load_checkpoint(tmp_path, prefer="last")
    assert c.path.name == ".last.old" and _weight(c) == 4.0
    _save(tmp_path, 5.0)  # the next save puts last in place and drops .last.old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    only_prev = tmp_path / "p"
    _save(only_prev, 1.0)
    os.replace(only_prev / "last", only_prev / "last.prev")
    assert ck.holds_run(only_prev)
    tmp_only = tmp_path / "t"
    (tmp_only / ".last.tmp-12").mkdir(parents=True)
    (tmp_only / ".last.tmp-12" / "checkpoint.json").write_text("{}")
    assert not ck.holds_run(tmp_only)  # an unfinished save is no run


def test_leftovers_of_dead_saves_are_removed_live_ones_kept(tmp_path):
    dead = _dead_pid()
    live = os.getppid()
    for name in (f".last.tmp-{dead}", f".last.prev.del-{dead}", f".best.tmp-{live}",
                 "notes"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"x" * 100)
    _save(tmp_path, 1.0)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [f".best.tmp-{live}", "last", "notes"]
    assert ck.clean_leftovers(tmp_path) == []


def _full_disk_on(monkeypatch, name: str):
    real = ck._write_bytes

    def write(path, data):
        if path.name == name:
            with open(path, "wb") as f:
                f.write(data[: len(data) // 2])  # a partial file, as a full disk leaves
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(ck, "_write_bytes", write)


@pytest.mark.parametrize("name", ["model.safetensors", "checkpoint.json"])
def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch, name):
    _save(tmp_path, 1.0)
    _save(tmp_path, 2.0)
    _full_disk_on(monkeypatch, name)
    with pytest.raises(ConvzooError, match="disk full while saving") as e:
        _save(tmp_path, 3.0)
    msg = str(e.value)
    assert f"the previous checkpoint {tmp_path / 'last'} is intact" in msg and "\n" not in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last", "last.prev"]
    c = ck.load_checkpoint(tmp_path, prefer="last")
    assert c.fallback is None and _weight(c) == 2.0


def test_disk_full_on_the_first_save_says_nothing_was_kept(tmp_path, monkeypatch):
    _full_disk_on(monkeypatch, "model.safetensors")
    with pytest.raises(ConvzooError, match="no earlier checkpoint had been written"):
        _save(tmp_path, 1.0)
    assert list(tmp_path.iterdir()) == [] and not ck.holds_run(tmp_path)


def test_copy_to_best_keeps_its_prev_too(tmp_path):
    _save(tmp_path, 1.0)
    ck.copy_checkpoint(tmp_path / "last", tmp_path / "best")
    _save(tmp_path, 2.0)
    ck.copy_checkpoint(tmp_path / "last", tmp_path / "best")
    assert _weight(ck.load_checkpoint(tmp_path)) == 2.0  # prefer best
    assert _weight(ck.load_checkpoint(tmp_path / "best.prev")) == 1.0


def test_mid_epoch_state_and_every_rng_round_trip(tmp_path):
    loader = torch.Generator().manual_seed(7)
    rng_np = np.random.default_rng(3)
    rng_py = random.Random(5)
    for g in (loader,):
        torch.randperm(10, generator=g)  # not at its seed any more
    gens = {"loader": loader, "numpy": rng_np, "python": rng_py}
    random.seed(11)
    np.random.seed(12)
    torch.manual_seed(13)
    extra = {"epoch": 3, "batches_done": 17, "order_seed": [0, 3],
             "order": torch.randperm(6, generator=torch.Generator().manual_seed(1))}
    _save(tmp_path, 1.0, generators=gens, extra_state=extra,
          optimizer=torch.optim.SGD(_model(1.0).parameters(), lr=0.1))

    def draws():
        return (random.random(), float(np.random.rand()), float(torch.rand(1)),
                torch.randperm(8, generator=loader).tolist(), float(rng_np.random()),
                rng_py.random())

    expected = draws()
    draws()  # everything moves on
    c = ck.load_checkpoint(tmp_path, prefer="last")
    got = c.extra_state()
    assert got["epoch"] == 3 and got["batches_done"] == 17 and got["order_seed"] == [0, 3]
    assert torch.equal(got["order"], extra["order"])
    c.restore_rng(gens)
    assert draws() == expected
    with pytest.raises(UserInputError, match="RNG state cannot be restored.*'other'"):
        c.restore_rng({"other": torch.Generator()})


def test_version_1_checkpoints_still_load(tmp_path):
    _save(tmp_path, 6.0)
    meta_file = tmp_path / "last" / "checkpoint.json"
    meta = json.loads(meta_file.read_text())
    meta["version"] = 1
    del meta["sha256"], meta[ck.META_DIGEST]
    meta_file.write_text(json.dumps(meta))
    c = ck.load_checkpoint(tmp_path, prefer="last")
    assert _weight(c) == 6.0 and c.extra_state() is None
    c.restore_rng()
    # without digests, a truncated v1 file is still caught by its header and size
    f = tmp_path / "last" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-4])
    with pytest.raises(UserInputError, match="size does not match its header"):
        ck.load_checkpoint(tmp_path, prefer="last")


# ---- one writer per run directory ----------------------------------------------------------

def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    with RunLock(tmp_path) as lock:
        holder = json.loads(lock.path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert holder_of(tmp_path)["pid"] == os.getpid()
        with pytest.raises(UserInputError, match=rf"in use by another run \(pid {os.getpid()} "
                                                  rf"on host .* since 20") as e:
            RunLock(tmp_path).acquire()
        assert "\n" not in str(e.value)
    assert not lock.path.exists() and holder_of(tmp_path) is None
    RunLock(tmp_path).acquire().release()  # free again


def _write_lock(run: Path, **holder) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    path = run / ".lock"
    path.write_text(json.dumps(holder))
    return path


def test_a_stale_lock_is_taken_over(tmp_path):
    dead = _dead_pid()
    _write_lock(tmp_path, pid=dead, host=socket.gethostname(), since="2020-01-01T00:00:00")
    assert holder_of(tmp_path) is None
    lock = RunLock(tmp_path).acquire()
    assert lock.took_over["pid"] == dead
    assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    lock.release()
    # a live pid whose start time is not the recorded one: the pid was reused
    _write_lock(tmp_path, pid=os.getppid(), host=socket.gethostname(), start="1", since="x")
    with RunLock(tmp_path) as lock:
        assert lock.took_over["start"] == "1"


def test_other_hosts_and_fresh_empty_locks_are_respected(tmp_path):
    _write_lock(tmp_path / "a", pid=_dead_pid(), host="elsewhere.example", since="t0")
    with pytest.raises(UserInputError, match="host elsewhere.example since t0"):
        RunLock(tmp_path / "a").acquire()
    empty = tmp_path / "b" / ".lock"
    empty.parent.mkdir()
    empty.write_bytes(b"")  # another process between creating the file and writing it
    with pytest.raises(UserInputError, match="taking the lock this moment"):
        RunLock(tmp_path / "b").acquire()
    os.utime(empty, (0, 0))  # ... or one killed right there, long ago
    with RunLock(tmp_path / "b") as lock:
        assert lock.took_over["empty"] and lock.took_over["age"] > 1000


def test_a_lock_held_by_another_process_then_left_by_kill_9(tmp_path):
    code = ("import sys, time; from convzoo.runs.lock import RunLock; "
            f"RunLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(UserInputError, match=rf"pid {p.pid} on host"):
            RunLock(tmp_path).acquire()
    finally:
        p.kill()
        p.wait()
    assert (tmp_path / ".lock").exists()  # SIGKILL leaves it behind ...
    with RunLock(tmp_path) as lock:  # ... and the next run takes it over
        assert lock.took_over["pid"] == p.pid
