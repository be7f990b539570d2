"""One writer per run directory: a lock file naming its owner.

`RUN/.lock` holds JSON: the owner's pid, host, process start time, when it took the lock and
the identity of the directory it locked (device and inode, and its real path for people).
It is created with O_CREAT | O_EXCL, which the file system grants to one process only, before
the run writes anything. A second process is refused at once with a message naming the
holder. A lock whose owner is gone (same host, and no such process, or a zombie, or another
process that reused the pid) is stale and taken over; a lock from another host cannot be
checked from here and is never taken over, except under torchrun: a lock taken by a worker
of an earlier restart of the same job (its rendezvous id) is stale wherever it was, since the
agents stop every worker before they start the next ones (rank 0 may move to another node).
A lock on this host that names another directory was copied with the run (`cp -r` while it
trained) and is stale here too. The lock is released (the file removed, if it is still ours)
by `release`, the context manager's exit or, failing both, at interpreter exit.
A process killed with SIGKILL leaves its lock behind; the next run finds it stale.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import UserInputError
from .disk import pid_alive

LOCK_NAME = ".lock"
#: A lock file still empty after this long was left by a process killed while creating it.
EMPTY_GRACE_S = 10.0

_held: dict[str, RunLock] = {}  # lock path -> lock, for the release at exit


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which tells a process from
    a later one given the same pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _elastic() -> dict[str, Any] | None:
    """Under torchrun's agent: the job's rendezvous id and the workers' restart count."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if not run_id:
        return None
    try:
        restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    except ValueError:
        restart = 0
    return {"run_id": run_id, "restart": restart}


def _describe(holder: dict[str, Any]) -> str:
    if holder.get("empty"):
        return "a process that is taking the lock this moment"
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
            f"since {holder.get('since', '?')}")


def _same(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    """The same holder record (an empty file's age does not count: it grows as we look)."""
    return a is not None and {k: v for k, v in a.items() if k != "age"} == \
        {k: v for k, v in b.items() if k != "age"}


class RunLock:
    """`with RunLock(run_dir): ...` or `lock = RunLock(run_dir).acquire(); ...; lock.release()`."""

    def __init__(self, run_dir: str | Path, name: str = LOCK_NAME) -> None:
        self.dir = Path(run_dir)
        self.path = self.dir / name
        self.held = False
        #: The lock made the directory: released with nothing else in it, it goes too (a run
        #: refused before writing anything leaves no empty directory behind).
        self.created = False
        self._mine: dict[str, Any] = {}
        #: The stale holder this lock took over from, if any (for the run's log).
        self.took_over: dict[str, Any] | None = None

    # -- taking

    def acquire(self) -> RunLock:
        """Take the lock or raise a one-line UserInputError naming who holds it."""
        if self.held:
            return self
        created = self.created = not self.dir.exists()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserInputError(f"cannot create the run directory {self.dir} "
                                 f"({e.strerror}); choose another --out") from None
        try:
            return self._acquire()
        except UserInputError:
            if created:  # an empty directory made for nothing is not left behind
                try:
                    self.dir.rmdir()
                except OSError:
                    pass
            raise

    def _acquire(self) -> RunLock:
        for _ in range(200):  # a stale lock removed, then the race for the new one
            if self._create():
                return self
            holder = self._read()
            if holder is None:
                continue  # vanished between the two calls: try again
            if not self._stale(holder):
                raise UserInputError(
                    f"{self.dir} is in use by another run ({_describe(holder)}); wait for it "
                    f"to finish or choose another --out (if that process is gone, remove "
                    f"{self.path})")
            self._take_over(holder)
        raise UserInputError(f"could not take the lock {self.path}: other processes keep "
                             "taking it; try again")

    def _create(self) -> bool:
        self._mine = {"pid": os.getpid(), "host": socket.gethostname(),
                      "start": _start_time(os.getpid()),
                      "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                      "dir": os.path.realpath(self.dir), "dir_id": self._dir_id()}
        if _elastic() is not None:
            self._mine["elastic"] = _elastic()
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as e:
            raise UserInputError(f"cannot write in the run directory {self.dir} "
                                 f"({e.strerror}); choose another --out") from None
        try:
            try:
                data = json.dumps(self._mine).encode()
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            # an empty lock left here would block every run of this directory for a while
            try:
                self.path.unlink()
            except OSError:
                pass
            full = e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1))
            raise UserInputError(f"cannot write the lock {self.path} ({e.strerror})"
                                 + ("; the disk is full: free some space" if full else "")
                                 + " or choose another --out") from None
        self.held = True
        _held[str(self.path)] = self
        return True

    def _dir_id(self) -> list[int] | None:
        """The run directory's identity (device, inode): a copy (`cp -r`) has another one,
        a move (`mv`) keeps it."""
        try:
            st = self.dir.stat()
        except OSError:
            return None
        return [st.st_dev, st.st_ino]

    def _read(self) -> dict[str, Any] | None:
        """The holder's record; {} when unreadable or not yet written; None when gone."""
        try:
            text = self.path.read_bytes()
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            holder = json.loads(text)
        except (ValueError, RecursionError):
            holder = None
        if not isinstance(holder, dict):
            # being written this instant, or left empty by a kill: judged by its age
            return {"empty": True, "age": age}
        return holder

    def _stale(self, holder: dict[str, Any]) -> bool:
        if holder.get("empty"):
            return holder.get("age", 0) > EMPTY_GRACE_S
        mine, theirs = _elastic(), holder.get("elastic")
        if mine is not None and isinstance(theirs, dict) and \
                theirs.get("run_id") == mine["run_id"] and \
                isinstance(theirs.get("restart"), int) and theirs["restart"] < mine["restart"]:
            return True  # a worker of an earlier restart of this job: torchrun stopped it
        if holder.get("host") != socket.gethostname():
            return False  # another machine's process: cannot be checked from here
        pid = holder.get("pid")
        if not isinstance(pid, int):
            return True
        held = holder.get("dir_id")
        if held is not None and self._dir_id() is not None and held != self._dir_id():
            return True  # copied with its directory: its holder holds the original, not this

        if pid == os.getpid():
            return str(self.path) not in _held  # ours only if this process took it
        if not pid_alive(pid):
            return True
        start = holder.get("start")
        now = _start_time(pid)
        return start is not None and now is not None and start != now  # pid reused

    def _take_over(self, holder: dict[str, Any]) -> None:
        """Remove a stale lock, unless someone replaced it since we read it.

        Done under a second O_EXCL file, so two processes that both judged the same lock stale
        cannot remove it one after the other, the second removing the first one's new lock."""
        guard = self.path.with_name(self.path.name + ".takeover")
        try:
            os.close(os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            try:  # left by a process killed inside this function: a few lines, not seconds
                if time.time() - guard.stat().st_mtime > EMPTY_GRACE_S:
                    guard.unlink()
            except OSError:
                pass
            time.sleep(0.02)
            return
        try:
            if _same(self._read(), holder):
                self.path.unlink()
                self.took_over = holder
        except FileNotFoundError:
            pass
        finally:
            try:
                guard.unlink()
            except OSError:
                pass

    # -- letting go

    def release(self) -> None:
        """Remove the lock file if it is still ours."""
        if not self.held:
            return
        self.held = False
        _held.pop(str(self.path), None)
        if self._read() == self._mine:
            try:
                self.path.unlink()
            except OSError:
                pass
        if self.created:
            try:
                self.dir.rmdir()  # only if empty
            except OSError:
                pass

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def holder_of(run_dir: str | Path) -> dict[str, Any] | None:
    """Who holds the lock of `run_dir` (pid, host, since), or None when nobody does."""
    lock = RunLock(run_dir)
    holder = lock._read() if lock.path.exists() else None
    if holder is None or lock._stale(holder):
        return None
    return holder


@atexit.register
def _release_all() -> None:
    for lock in list(_held.values()):
        lock.release()
