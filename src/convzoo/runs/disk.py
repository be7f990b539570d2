"""The file-system steps a save is made of: durable writes, directory fsyncs, the atomic swap
of a finished directory into place, and the removal of what killed saves left behind."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger("convzoo.train")

PREV = ".prev"
#: Directories a save leaves while it runs: `.NAME.tmp-PID` and `.NAME.prev.del-PID`.
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:tmp|del)-(?P<pid>\d+)$")


def _write_bytes(path: Path, data: bytes) -> None:
    """Write and fsync one file (the single place a save writes bytes; tests replace it)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a directory's entries (new names, renames) durable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory; the rename still holds
        pass
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return False
    try:  # a killed child its parent has not reaped yet is a zombie: dead for our purposes
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def clean_leftovers(folder: str | Path) -> list[Path]:
    """Remove the temporary directories killed saves left in `folder` (only those whose
    process is gone, or is this one); return what was removed."""
    folder = Path(folder)
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _LEFTOVER.match(p.name)
        if m is None or not p.is_dir():
            continue
        pid = int(m["pid"])
        if pid == os.getpid() or not pid_alive(pid):
            _remove(p)
            removed.append(p)
            log.info("removed %s, left by an interrupted save", p)
    return removed


def _swap_in(tmp: Path, final: Path) -> None:
    """Put the finished directory `tmp` at `final`; the old `final` becomes `final.prev`.

    There is a valid checkpoint at `final` or `final.prev` at every moment."""
    prev = final.with_name(final.name + PREV)
    trash = final.with_name(f".{final.name}{PREV}.del-{os.getpid()}")
    if trash.exists():
        _remove(trash)
    moved = False
    if final.exists():
        if prev.exists():
            os.replace(prev, trash)  # `final` is still in place
            moved = True
        os.replace(final, prev)  # from here until the next line only `prev` is valid
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    if moved:
        _remove(trash)
    old = final.with_name(f".{final.name}.old")  # what older versions left mid-swap
    if old.exists():
        _remove(old)


def unique_dir(base: Path) -> Path:
    """Create and return `base`, or `base-2`, `base-3`, ... when taken: mkdir succeeds for
    one process only, so two runs started in the same second get a directory each."""
    from ..errors import UserInputError

    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserInputError(f"cannot create {base.parent} for the run ({e.strerror}); "
                             "give --out DIR") from None
    for n in range(1, 1000):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise UserInputError(f"cannot create the run directory {path} ({e.strerror}); "
                                 "give --out DIR") from None
    raise UserInputError(f"{base} and 998 numbered variants exist; give --out DIR")


def disk_message(e: OSError, what: str) -> str:
    """One line for an OSError met writing `what`: a full disk, a read-only one, or other."""
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return f"disk full while writing {what} ({e.strerror}); free some space"
    if e.errno == errno.EROFS:
        return f"cannot write {what}: the file system is read-only"
    return f"cannot write {what} ({e.strerror or e})"


def write_text_atomic(path: Path, text: str) -> None:
    """`path` holds `text`, or (on a full or read-only disk, say) keeps what it held: the text
    goes to a temporary name first, removed again if it cannot be finished."""
    from ..errors import ConvzooError

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise ConvzooError(disk_message(e, str(path))) from None
