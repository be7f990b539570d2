"""Full and read-only disks: train, --resume and report give one line, and leave neither an
empty lock nor a half-written file behind. Simulated (an OSError(ENOSPC) from the write) and,
when this process may mount, on a real 4 MB tmpfs and a read-only bind mount."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from convzoo.cli import main
from convzoo.errors import UserInputError
from convzoo.runs import lock as lock_mod
from convzoo.runs.lock import RunLock

TRAIN = ["train", "lenet5_modern", "--data", "fake:1x28x28:32:2", "--epochs", "1",
         "--batch-size", "16", "--device", "cpu", "--quiet", "--set", "plots=false",
         "--set", "tensorboard=false", "--no-report"]


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def _one_line(code: int, err: str) -> None:
    assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def _leftovers(folder: Path) -> list[str]:
    """What a failed write must not leave: the lock, temporary files."""
    return sorted(p.name for p in folder.rglob("*") if p.name == ".lock" or ".tmp" in p.name)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("r") / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    return out


# ---- simulated ------------------------------------------------------------------------------

def test_a_lock_that_cannot_be_written_is_removed(tmp_path, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lock_mod.os, "write", full)
    with pytest.raises(UserInputError, match="disk is full") as e:
        RunLock(tmp_path / "run").acquire()
    monkeypatch.undo()
    assert "\n" not in str(e.value)
    assert not (tmp_path / "run").exists()  # neither the empty lock nor the directory made
    RunLock(tmp_path / "run").acquire().release()  # nothing blocks the next run


def test_a_report_that_cannot_be_written_leaves_nothing(capsys, tmp_path, monkeypatch, run_dir):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    real = Path.write_bytes

    def full(self, data):
        real(self, data[:100])  # part of it, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    code, err = _run(capsys, ["report", str(run), "--no-predictions"])
    monkeypatch.undo()
    _one_line(code, err)
    assert "disk is full" in err and _leftovers(run) == []
    assert not (run / "report.html").exists()


# ---- real mounts ----------------------------------------------------------------------------

def _mount(*args: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    p = subprocess.run(["mount", *args], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount here: {p.stderr.strip()}")


@pytest.fixture
def tiny_disk(tmp_path):
    where = tmp_path / "fs"
    where.mkdir()
    _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where))
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path, free_kb: int) -> None:
    (disk / "fill").unlink(missing_ok=True)
    st = os.statvfs(disk)
    n = st.f_bavail * st.f_frsize - free_kb * 1024
    with open(disk / "fill", "wb") as f:
        while n > 0:
            try:
                n -= f.write(b"\0" * min(n, 1 << 16))
            except OSError:
                break


@pytest.mark.parametrize("free_kb", [0, 4, 8, 12, 64])
def test_train_on_a_full_disk(capsys, tiny_disk, free_kb):
    _fill(tiny_disk, free_kb)
    code, err = _run(capsys, [*TRAIN, "--out", str(tiny_disk / "new")])
    _one_line(code, err)
    assert "disk full" in err or "disk is full" in err, err
    assert _leftovers(tiny_disk) == []


def test_resume_and_report_on_a_full_disk(capsys, tiny_disk, run_dir):
    run = tiny_disk / "run"
    shutil.copytree(run_dir, run)
    (run / "report.html").unlink(missing_ok=True)
    for free_kb in (0, 16):
        _fill(tiny_disk, free_kb)
        code, err = _run(capsys, ["train", "--resume", str(run), "--epochs", "3", "--quiet",
                                  "--no-report"])
        _one_line(code, err)
        code, err = _run(capsys, ["report", str(run), "--no-predictions"])
        _one_line(code, err)
        assert _leftovers(tiny_disk) == [] and not (run / "report.html").exists()
    (tiny_disk / "fill").unlink()
    code, err = _run(capsys, ["eval", str(run), "--no-plot"])  # the run is intact
    assert code == 0, err


@pytest.fixture
def read_only(tmp_path, run_dir):
    src = tmp_path / "src"
    shutil.copytree(run_dir, src)
    (src / "report.html").unlink(missing_ok=True)
    where = tmp_path / "ro"
    where.mkdir()
    _mount("--bind", str(src), str(where))
    try:
        p = subprocess.run(["mount", "-o", "remount,bind,ro", str(where)], capture_output=True,
                           text=True)
        if p.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {p.stderr.strip()}")
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.parametrize("argv", [
    ["report", "RO"], ["report", "RO", "--no-predictions"],
    ["train", "--resume", "RO", "--epochs", "3", "--quiet", "--no-report"],
    [*TRAIN, "--out", "RO/new"],
    ["export", "RO", "--out", "RO/model.pt2"],
])
def test_a_read_only_mount(capsys, read_only, argv):
    before = sorted(p.name for p in read_only.rglob("*"))
    code, err = _run(capsys, [a.replace("RO", str(read_only)) for a in argv])
    _one_line(code, err)
    assert "read-only" in err.lower() or "not writable" in err, err
    assert "cannot be exported" not in err, err  # the place is at fault, not the model
    assert sorted(p.name for p in read_only.rglob("*")) == before
