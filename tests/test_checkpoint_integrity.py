"""Checkpoints against damage and concurrent readers: best/ is a copy of its own, a reader
never takes a save in progress for damage, checkpoint.json carries its own digest, a scorer
needs only the model file, and a fallback names the checkpoint that was asked for."""

import json
import os
import threading
from pathlib import Path

import pytest
import torch
from torch import nn

from convzoo.errors import UserInputError
from convzoo.runs import checkpoint as ck


def _model(value: float) -> nn.Module:
    m = nn.Linear(3, 2)
    with torch.no_grad():
        m.weight.fill_(value)
    return m


def _save(run: Path, value: float, name: str = "last") -> Path:
    return ck.save_checkpoint(run / name, model=_model(value),
                              meta={"epoch": int(value), "step": int(value)})


def _weight(c: ck.Checkpoint) -> float:
    return float(c.model_state["weight"][0, 0])


def _flip_in_place(f: Path, at: int = -2) -> None:
    """Damage a file where it lies (its inode, as a bad disk would), not by replacing it."""
    with open(f, "r+b") as fh:
        fh.seek(at, os.SEEK_END)
        b = fh.read(1)
        fh.seek(at, os.SEEK_END)
        fh.write(bytes([b[0] ^ 0x10]))


# ---- best/ is its own copy ------------------------------------------------------------------

def test_damage_to_last_does_not_reach_best(tmp_path):
    _save(tmp_path, 1.0)
    ck.copy_checkpoint(tmp_path / "last", tmp_path / "best")
    for name in ("model.safetensors", "state.safetensors", ck.META):
        assert not os.path.samefile(tmp_path / "last" / name, tmp_path / "best" / name)
    _flip_in_place(tmp_path / "last" / "model.safetensors")
    best = ck.load_checkpoint(tmp_path, prefer="best")
    assert best.path == tmp_path / "best" and best.fallback is None and _weight(best) == 1.0
    # the damaged one, named directly: one line, recommending only what is intact
    with pytest.raises(UserInputError) as e:
        ck.load_checkpoint(tmp_path / "last")
    msg = str(e.value)
    assert "corrupt" in msg and f"use another checkpoint of the run: {tmp_path / 'best'}" in msg
    assert "\n" not in msg and "last.prev" not in msg


def test_a_damaged_source_is_not_copied_to_best(tmp_path):
    _save(tmp_path, 1.0)
    ck.copy_checkpoint(tmp_path / "last", tmp_path / "best")
    _save(tmp_path, 2.0)
    _flip_in_place(tmp_path / "last" / "model.safetensors")
    with pytest.raises(UserInputError, match="corrupt"):
        ck.copy_checkpoint(tmp_path / "last", tmp_path / "best")
    assert _weight(ck.load_checkpoint(tmp_path / "best")) == 1.0
    _flip_in_place(tmp_path / "best" / "model.safetensors")
    _flip_in_place(tmp_path / "last.prev" / "model.safetensors")
    with pytest.raises(UserInputError, match="no other checkpoint of this run is intact"):
        ck.load_checkpoint(tmp_path / "last")


# ---- readers during saves -------------------------------------------------------------------

def _writer(run: Path, n: int, started: threading.Event) -> None:
    for i in range(1, n + 1):
        _save(run, float(i))
        if i % 4 == 0:
            ck.copy_checkpoint(run / "last", run / "best")
            started.set()  # from here, last/ and best/ exist


def test_readers_during_saves_see_no_damage(tmp_path, caplog):
    """A run saving 50 times while it is read in a loop: every read is whole and consistent
    (its weights are those of its own step), none is called corrupt, none falls back. The
    writer is a thread of this process: its renames interleave with the reads all the same."""
    started = threading.Event()
    writer = threading.Thread(target=_writer, args=(tmp_path, 50, started))
    writer.start()
    started.wait()
    reads, problems = 0, []
    sources = [tmp_path / "last", tmp_path, tmp_path / "best"]
    while writer.is_alive() or reads < 30:
        src = sources[reads % 3]
        try:
            c = ck.load_checkpoint(src, prefer="last")
            if _weight(c) != c.meta["step"]:
                problems.append(f"{src}: a read mixed two saves")
            if c.fallback is not None:
                problems.append(c.fallback)
        except UserInputError as e:
            problems.append(str(e))
        reads += 1
    writer.join()
    assert problems == [] and reads >= 30, (len(problems), reads, problems[:3])
    assert "corrupt" not in caplog.text
    assert _weight(ck.load_checkpoint(tmp_path, prefer="last")) == 50.0


def test_a_part_read_later_from_a_replaced_directory_is_named_as_such(tmp_path):
    _save(tmp_path, 1.0)
    c = ck.load_checkpoint(tmp_path / "last", need=("model",))
    _save(tmp_path, 2.0)  # last/ is now another directory
    with pytest.raises(UserInputError, match="replaced by a newer save after it was opened"):
        c.training_state()
    assert _weight(c) == 1.0  # what was read at opening stays what it was


# ---- checkpoint.json's own digest -----------------------------------------------------------

def test_a_flipped_bit_in_checkpoint_json_is_refused_or_falls_back(tmp_path, caplog):
    _save(tmp_path, 11.0)
    _save(tmp_path, 12.0)
    f = tmp_path / "last" / ck.META
    text = f.read_bytes()
    assert text.count(b'"step": 12') == 1
    f.write_bytes(text.replace(b'"step": 12', b'"step": 13'))  # '2' -> '3': one bit
    with pytest.raises(UserInputError, match="corrupt or was edited") as e:
        ck.load_checkpoint(tmp_path / "last")
    assert str(f) in str(e.value) and "\n" not in str(e.value)
    c = ck.load_checkpoint(tmp_path, prefer="last")
    assert c.path.name == "last.prev" and c.meta["step"] == 11
    assert "meta_sha256" in c.fallback and "loaded" in caplog.text


@pytest.mark.parametrize("edit", ["drop-digest", "version-2-keeps-digest"])
def test_the_digest_cannot_be_dodged(tmp_path, edit):
    _save(tmp_path, 1.0)
    f = tmp_path / "last" / ck.META
    meta = json.loads(f.read_text())
    if edit == "drop-digest":
        del meta[ck.META_DIGEST]
    else:  # a flipped version number with the digest still there is still checked
        meta["version"] = 2
    f.write_text(json.dumps(meta))
    with pytest.raises(UserInputError, match="corrupt"):
        ck.load_checkpoint(tmp_path / "last")


def test_checkpoints_without_a_json_digest_still_load(tmp_path):
    _save(tmp_path, 5.0)
    f = tmp_path / "last" / ck.META
    meta = json.loads(f.read_text())
    del meta[ck.META_DIGEST]
    meta["version"] = 2  # as convzoo wrote them before the digest
    f.write_text(json.dumps(meta))
    assert _weight(ck.load_checkpoint(tmp_path / "last")) == 5.0


# ---- small ones -----------------------------------------------------------------------------

def test_a_scorer_ignores_damage_to_the_training_state(tmp_path):
    _save(tmp_path, 1.0)
    _save(tmp_path, 2.0)
    _flip_in_place(tmp_path / "last" / "state.safetensors")
    c = ck.load_checkpoint(tmp_path, prefer="last", need=("model", "ema"))
    assert c.path == tmp_path / "last" and c.fallback is None and _weight(c) == 2.0
    # a resume needs it all: falls back
    assert ck.load_checkpoint(tmp_path, prefer="last").path.name == "last.prev"


def test_a_fallback_names_the_checkpoint_that_exists(tmp_path):
    _save(tmp_path, 1.0)
    _save(tmp_path, 2.0)
    _flip_in_place(tmp_path / "last" / "model.safetensors")
    c = ck.load_checkpoint(tmp_path, prefer="best")  # no best/ in this run
    assert c.path.name == "last.prev"
    assert f"instead of {tmp_path / 'last'}:" in c.fallback and "best" not in c.fallback


# ---- locks and names ------------------------------------------------------------------------

HOLDER = """
import sys, time
from convzoo.runs.lock import RunLock
RunLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_a_run_copied_while_its_source_trains_can_be_resumed(tmp_path):
    import shutil
    import subprocess
    import sys

    from convzoo.runs.lock import RunLock

    src, copy = tmp_path / "src", tmp_path / "copy"
    _save(src, 1.0)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(src)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        shutil.copytree(src, copy)  # `cp -r` while the source trains: its .lock comes along
        assert (copy / ".lock").is_file()
        lock = RunLock(copy).acquire()  # the copy's lock names the source: stale here
        assert lock.took_over is not None and lock.took_over["pid"] == holder.pid
        lock.release()
        with pytest.raises(UserInputError, match="in use by another run"):
            RunLock(src).acquire()  # the source itself stays locked
    finally:
        holder.kill()
        holder.wait()


def test_default_run_names_are_unique_within_a_second(tmp_path, monkeypatch):
    from convzoo.train.config import TrainConfig
    from convzoo.train.run import default_out

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("time.strftime", lambda fmt, *a: "20250101-120000")
    cfg = TrainConfig(model="lenet5", data="fake:1x28x28:8:2")
    first, second = default_out(cfg, claim=True), default_out(cfg, claim=True)
    assert first != second and first.is_dir() and second.is_dir()
    assert second.name == first.name + "-2"
