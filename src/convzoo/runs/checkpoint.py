"""Checkpoints: tensors in safetensors, everything else in JSON; nothing is ever unpickled.

A checkpoint is a directory:
  model.safetensors      the model's state_dict
  state.safetensors      the tensors of the optimiser, the schedule, the RNG states and the
                         caller's extra state (a loader's position, say)
  ema.safetensors        the parameter EMA (a model state_dict under `module.`), when on
  checkpoint.json        model name and arguments, config, epoch, step, metrics, class names,
                         the non-tensor parts of the optimiser/schedule/RNG/extra state, the
                         SHA-256 of every tensor file, versions, and `meta_sha256`: the SHA-256
                         of the file's own canonical JSON without that field

On disk, a save never leaves a moment without a valid checkpoint:

1. the new one is written to `.NAME.tmp-PID` beside its final place, every file fsynced and
   then the directory;
2. the previous `NAME.prev` (if any) is renamed away to `.NAME.prev.del-PID`;
3. `NAME` becomes `NAME.prev`, the new directory becomes `NAME`, the parent is fsynced;
4. the renamed-away directory is removed.

A kill anywhere leaves `NAME` or, between the two renames of step 3, `NAME.prev`; loading a
run directory falls back to `NAME.prev` (and to `.NAME.old`, which older versions left) when
`NAME` is missing or damaged, and says so. Temporary directories a killed save left behind
are removed by the next save (or `clean_leftovers`) once the process named in them is gone.
A full disk during a save removes the partial copy and raises a `ConvzooError` saying the
previous checkpoint is intact.

`best` is written by `copy_checkpoint` as a copy of its own (never hard links to `last`'s
files), so damage to one cannot reach the other.

Reading checks every field it uses, the digest of checkpoint.json and the SHA-256 of every
tensor file: a truncated, bit-flipped or hand-edited checkpoint is a one-line `UserInputError`
naming the file. A reader opens the checkpoint directory once and reads every file through
that one handle, so a save that swaps a newer directory into place meanwhile cannot mix two
saves; when the name it opened is renamed away or removed in the middle (a run saving as it
is read), it reads again, a bounded number of times, rather than calling the save corrupt.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConvzooError, UserInputError
from .disk import (  # noqa: F401  (tests replace _write_bytes here)
    _LEFTOVER,
    PREV,
    _fsync_dir,
    _remove,
    _swap_in,
    _write_bytes,
    clean_leftovers,
    pid_alive,
)
from .meta import RunMeta
from .state import (  # noqa: F401
    Generators,
    join_state,
    rng_state,
    set_rng_state,
    split_state,
)

log = logging.getLogger("convzoo.train")

FORMAT = "convzoo.checkpoint"
#: 2 added the file digests and the extra (mid-epoch) state, 3 the digest of checkpoint.json
#: itself (`meta_sha256`); versions 1 and 2 still load.
VERSION = 3
#: The field of checkpoint.json holding the digest of the rest of it.
META_DIGEST = "meta_sha256"
#: How often a reader starts again when saves keep replacing what it is reading.
READ_ATTEMPTS = 40
META = "checkpoint.json"
#: The checkpoint names a run directory holds.
RUN_CHECKPOINTS = ("last", "best")


def versions() -> dict[str, str]:
    import safetensors
    import torchvision

    from .. import __version__

    return {"convzoo": __version__, "torch": torch.__version__,
            "torchvision": torchvision.__version__, "safetensors": safetensors.__version__,
            "python": platform.python_version()}


# ---- the file system -----------------------------------------------------------------------

def holds_run(folder: str | Path) -> bool:
    """Whether `folder` holds a checkpoint of a run: `last` or `best`, or what a kill in the
    middle of a swap leaves of them (`last.prev`, the older `.last.old`)."""
    folder = Path(folder)
    for name in RUN_CHECKPOINTS:
        for cand in _candidates(folder, name):
            if (cand / META).is_file():
                return True
    return False


def _candidates(folder: Path, name: str) -> tuple[Path, ...]:
    return folder / name, folder / f"{name}{PREV}", folder / f".{name}.old"


def _disk_error(e: OSError, path: Path) -> ConvzooError:
    prev = next((c for c in _candidates(path.parent, path.name) if (c / META).is_file()), None)
    kept = (f"the previous checkpoint {prev} is intact" if prev is not None
            else "no earlier checkpoint had been written")
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return ConvzooError(f"disk full while saving the checkpoint {path} ({e.strerror}); "
                            f"{kept}; free some space and resume")
    where = f" ({e.filename})" if e.filename else ""
    return ConvzooError(f"cannot write the checkpoint {path}: {e.strerror or e}{where}; {kept}")


def _tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save(tensors, metadata={"format": "pt"})


def state_dict_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    base = getattr(model, "_orig_mod", model)  # torch.compile's wrapper
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in base.state_dict().items()}


# ---- writing -------------------------------------------------------------------------------

def save_checkpoint(path: str | Path, *, model: torch.nn.Module, meta: dict[str, Any],
                    optimizer: torch.optim.Optimizer | None = None, schedule: Any = None,
                    ema: torch.nn.Module | None = None, rng: bool = True,
                    generators: Generators | None = None,
                    extra_state: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint directory at `path`; see the module docstring for how.

    `generators` (name -> generator) are saved with the global RNG states; `extra_state` is
    any nest of dicts, lists, numbers, strings and tensors (a loader's position within an
    epoch, say), read back by `Checkpoint.extra_state()`."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    training: dict[str, Any] = {}
    if optimizer is not None:
        training["optimizer"] = split_state(optimizer.state_dict(), "optimizer.", tensors)
    if schedule is not None:
        training["schedule"] = split_state(schedule.state_dict(), "schedule.", tensors)
    if rng:
        training["rng"] = split_state(rng_state(generators), "rng.", tensors)
    if extra_state is not None:
        training["extra"] = split_state(extra_state, "extra.", tensors)
    blobs = {"model": ("model.safetensors", _tensor_bytes(state_dict_of(model)))}
    if tensors or training:
        blobs["state"] = ("state.safetensors", _tensor_bytes(tensors))
    if ema is not None:
        blobs["ema"] = ("ema.safetensors", _tensor_bytes(state_dict_of(ema)))
    doc = {"format": FORMAT, "version": VERSION, **meta, "training_state": training,
           "files": {k: name for k, (name, _) in blobs.items()},
           "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in blobs.values()},
           "versions": versions(), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    return _write_dir(path, list(blobs.values()), seal_meta(doc))


def _write_dir(path: Path, files: list[tuple[str, bytes]], meta_bytes: bytes) -> Path:
    """Write a checkpoint directory at `path` as every save does: its files into a temporary
    directory beside it, checkpoint.json last (a directory with it is complete), fsynced, then
    swapped into place (see the module's docstring); a failure removes the partial copy."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_leftovers(path.parent)
        tmp.mkdir()
        for name, data in files:
            _write_bytes(tmp / name, data)
        _write_bytes(tmp / META, meta_bytes)
        _fsync_dir(tmp)
        _swap_in(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise _disk_error(e, path) from None
    return path


def meta_digest(meta: dict[str, Any]) -> str:
    """The SHA-256 of `meta` (checkpoint.json as read) without its own digest field, over a
    canonical form: sorted keys, no spaces, so any bit changed in a value is seen."""
    body = {k: v for k, v in meta.items() if k != META_DIGEST}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode()).hexdigest()


def seal_meta(doc: dict[str, Any]) -> bytes:
    """checkpoint.json's bytes for `doc`, with `meta_sha256` over `doc` as it will read back
    (JSON turns keys into strings and unknown objects into their repr)."""
    back = json.loads(json.dumps(doc, default=repr))
    back[META_DIGEST] = meta_digest(back)
    return json.dumps(back, indent=1).encode()


def copy_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """`dst` becomes a copy of the checkpoint `src`, atomically, as `save_checkpoint` writes:
    its own files (no hard links, so damage to one cannot reach the other), each one checked
    against `src`'s digests as it is read (a damaged `src` is refused, not copied)."""
    src, dst = Path(src), Path(dst)
    snap = _read_again_while_moving(lambda _: _snapshot(src, None), src)
    return _write_dir(dst, [(name, snap.raw[key]) for key, name in snap.meta["files"].items()],
                      snap.meta_bytes)


# ---- reading -------------------------------------------------------------------------------

class _Moved(Exception):
    """The directory being read was renamed away or removed by a save in the middle of the
    read (or its name is empty for the instant between a swap's two renames): read again."""


@dataclass
class _Snapshot:
    meta: dict[str, Any]
    meta_bytes: bytes
    raw: dict[str, bytes]  # part ('model', 'state', 'ema') -> its file's checked bytes
    ident: tuple[int, int]  # (st_dev, st_ino) of the directory read


@dataclass
class Checkpoint:
    path: Path
    meta: dict[str, Any]
    _tensors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    #: Why this checkpoint was loaded instead of the one asked for (None: it is that one).
    fallback: str | None = None
    #: Its files' digests were checked when it was opened (not again on reading).
    verified: bool = False
    #: The checked bytes of the parts read when it was opened.
    _raw: dict[str, bytes] = field(default_factory=dict, repr=False)
    #: The directory it was read from, to tell whether a save replaced it since.
    _ident: tuple[int, int] | None = None

    @property
    def meta_file(self) -> Path:
        return self.path / META

    @property
    def info(self) -> RunMeta:
        """The run's metadata, typed (see `runs.meta`)."""
        return RunMeta.of(self.meta)

    def tensors(self, which: str) -> dict[str, torch.Tensor]:
        """'model', 'state' or 'ema': that file's tensors, read (and checked) on first use."""
        if which not in self._tensors:
            name = self.meta.get("files", {}).get(which)
            if name is None:
                raise UserInputError(f"checkpoint {self.path} has no {which} state")
            data = self._raw.pop(which, None)
            if data is None:
                data = self._read_part(which, name)
            self._tensors[which] = _parse_tensors(self.path / name, data)
        return self._tensors[which]

    def _read_part(self, which: str, name: str) -> bytes:
        """A part not read at opening, from the same directory (a save that replaced it since
        is named as such, not taken for damage)."""
        try:
            dfd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            dfd = -1
        try:
            if dfd < 0 or (self._ident is not None and _ident(os.fstat(dfd)) != self._ident):
                raise UserInputError(f"checkpoint {self.path} was replaced by a newer save "
                                     f"after it was opened, before its {which} state was "
                                     "read; open it again")
            data = _read_file(dfd, name, self.path)
        finally:
            if dfd >= 0:
                os.close(dfd)
        _check_blob(self.path / name, data, self.meta.get("sha256", {}).get(name))
        return data

    @property
    def model_state(self) -> dict[str, torch.Tensor]:
        return self.tensors("model")

    @property
    def has_ema(self) -> bool:
        return "ema" in self.meta.get("files", {})

    def ema_model_state(self) -> dict[str, torch.Tensor]:
        """The EMA weights under the model's own names."""
        return {k.removeprefix("module."): v for k, v in self.tensors("ema").items()
                if k.startswith("module.")}

    def training_state(self) -> dict[str, Any]:
        """Optimiser, schedule, RNG and extra state, tensors in place."""
        ts = self.meta.get("training_state", {})
        tensors = self.tensors("state") if ts else {}
        try:
            out = join_state(ts, tensors)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError):
            raise UserInputError(f"{self.meta_file}: its training_state does not match "
                                 f"{self.path / 'state.safetensors'}; the checkpoint is "
                                 "damaged, use another one") \
                from None
        if not isinstance(out, dict):
            raise UserInputError(f"{self.meta_file}: training_state is not a table")
        return out

    def extra_state(self) -> dict[str, Any] | None:
        """What `save_checkpoint(extra_state=...)` stored, or None."""
        extra = self.training_state().get("extra")
        if extra is not None and not isinstance(extra, dict):
            raise UserInputError(f"{self.meta_file}: its extra state is not a table")
        return extra

    def restore_rng(self, generators: Generators | None = None) -> None:
        """Put back every RNG state the checkpoint holds (and those of `generators`)."""
        rng = self.training_state().get("rng")
        if rng is None:
            raise UserInputError(f"checkpoint {self.path} holds no RNG state")
        try:
            set_rng_state(rng, generators)
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError) as e:
            raise UserInputError(f"{self.meta_file}: its RNG state cannot be restored "
                                 f"({_first_line(e)})") from None

    @property
    def class_names(self) -> list[str] | None:
        return self.meta.get("class_names")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:160]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _ident(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _parse_tensors(path: Path, data: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    try:
        return load(data)
    except Exception as e:  # noqa: BLE001 - any reader error means a damaged file
        raise UserInputError(f"checkpoint file {path} is corrupt or truncated "
                             f"({_first_line(e)})") from None


def read_tensors(path: Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of one safetensors file; `sha256`, when given, must match its bytes."""
    if not path.is_file():
        raise UserInputError(f"checkpoint file {path} is missing")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserInputError(f"checkpoint file {path} cannot be read ({e.strerror})") from None
    _check_blob(path, data, sha256)
    return _parse_tensors(path, data)


def _check_blob(path: Path, data: bytes, sha256: str | None) -> None:
    """`data` (the bytes of tensor file `path`) has its recorded digest, or, in a version 1
    checkpoint that recorded none, at least a safetensors header that fits it."""
    if sha256 is not None:
        if hashlib.sha256(data).hexdigest() != sha256:
            raise UserInputError(f"checkpoint file {path} is corrupt or truncated (its SHA-256 "
                                 "is not the one recorded when it was saved)")
        return
    n = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    try:
        header = json.loads(data[8:8 + n]) if 0 < n <= len(data) - 8 else None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise UserInputError(f"checkpoint file {path} is corrupt or truncated (bad header)")
    ends = [v.get("data_offsets", [0, 0])[1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict)
            and isinstance(v.get("data_offsets"), list) and len(v["data_offsets"]) == 2
            and isinstance(v["data_offsets"][1], int)]
    if 8 + n + max(ends, default=0) != len(data):
        raise UserInputError(f"checkpoint file {path} is corrupt or truncated (its size does "
                             "not match its header)")


# The fields convzoo reads from checkpoint.json and the types they must have when present.
_INT = (int,)
_NUM = (int, float)
_FIELDS: dict[str, tuple[type, ...]] = {
    "model": (str,), "model_args": (dict,), "epoch": _INT, "step": _INT,
    "training_state": (dict,), "class_names": (list, type(None)), "metrics": (dict,),
    "history": (list,), "best_top1": _NUM, "best_epoch": (int, type(None)),
    "config": (dict,), "sha256": (dict,),
}


def check_meta(meta: Any, file: Path) -> dict[str, Any]:
    """`meta` if it is a checkpoint.json convzoo can use; else a UserInputError naming `file`."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserInputError(f"{file} is not a convzoo checkpoint")
    version = meta.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UserInputError(f"{file}: 'version' is {version!r}, not a format number")
    if version > VERSION:
        raise UserInputError(f"checkpoint {file.parent} was written by a newer convzoo "
                             f"(format {version}); upgrade convzoo to read it")
    for key, types in _FIELDS.items():
        if key in meta:
            v = meta[key]
            if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
                want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
                raise UserInputError(f"{file}: {key!r} is {type(v).__name__} "
                                     f"({repr(v)[:40]}), expected {want}")
    for key in ("epoch", "step"):
        if meta.get(key, 0) < 0:
            raise UserInputError(f"{file}: {key!r} is negative")
    files = meta.get("files")
    if not isinstance(files, dict) or "model" not in files:
        raise UserInputError(f"{file}: no 'files' table naming the model's tensors")
    for k, name in files.items():
        # a checkpoint names files inside its own directory, nothing else
        if (not isinstance(name, str) or not name or "/" in name or "\\" in name
                or name in (".", "..") or "\0" in name):
            raise UserInputError(f"{file}: files.{k} is {name!r}, not a file name")
    if not all(isinstance(v, str) for v in meta.get("sha256", {}).values()):
        raise UserInputError(f"{file}: 'sha256' holds a value that is not a digest")
    names = meta.get("class_names")
    if names is not None and not all(isinstance(n, str) for n in names):
        raise UserInputError(f"{file}: 'class_names' holds a value that is not a name")
    return meta


def _parse_meta(data: bytes, file: Path) -> dict[str, Any]:
    """checkpoint.json's bytes as a checked table, its own digest matching."""
    try:
        meta = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise UserInputError(f"checkpoint {file} is corrupt (not valid JSON: "
                             f"{_first_line(e)})") from None
    meta = check_meta(meta, file)
    digest = meta.get(META_DIGEST)
    if digest is None:
        if meta.get("version", 1) >= 3:  # written with a digest: its loss is damage
            raise UserInputError(f"checkpoint {file} is corrupt: its {META_DIGEST} is missing")
    elif digest != meta_digest(meta):
        raise UserInputError(f"checkpoint {file} is corrupt or was edited (its {META_DIGEST} "
                             "is not the digest of its contents)")
    return meta


def _read_meta(path: Path) -> dict[str, Any]:
    file = path / META
    try:
        data = file.read_bytes()
    except OSError as e:
        raise UserInputError(f"checkpoint {file} cannot be read ({e.strerror})") from None
    return _parse_meta(data, file)


def _read_file(dfd: int, name: str, folder: Path) -> bytes:
    """The bytes of `name` in the directory open as `dfd` (`folder` is its name, for errors)."""
    try:
        fd = os.open(name, os.O_RDONLY, dir_fd=dfd)
    except FileNotFoundError:
        st = os.fstat(dfd)
        try:
            same = _ident(os.stat(folder)) == _ident(st)
        except OSError:
            same = False
        if st.st_nlink == 0 or not same:  # removed or renamed away by a save: not damage
            raise _Moved(str(folder)) from None
        raise UserInputError(f"checkpoint file {folder / name} is missing") from None
    except OSError as e:
        raise UserInputError(f"checkpoint file {folder / name} cannot be read "
                             f"({e.strerror})") from None
    with open(fd, "rb") as f:
        try:
            return f.read()
        except OSError as e:
            raise UserInputError(f"checkpoint file {folder / name} cannot be read "
                                 f"({e.strerror})") from None


def _snapshot(path: Path, need: Collection[str] | None) -> _Snapshot:
    """checkpoint.json and the tensor files of the parts in `need` (None: all), each checked,
    all read through one handle on the directory `path` names now."""
    try:
        dfd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except FileNotFoundError:
        raise _Moved(str(path)) from None
    except OSError as e:
        raise UserInputError(f"checkpoint {path} cannot be read ({e.strerror})") from None
    try:
        ident = _ident(os.fstat(dfd))
        meta_bytes = _read_file(dfd, META, path)
        meta = _parse_meta(meta_bytes, path / META)
        digests = meta.get("sha256", {})
        raw = {}
        for key, name in meta["files"].items():
            if need is not None and key not in need:
                continue
            data = _read_file(dfd, name, path)
            _check_blob(path / name, data, digests.get(name))
            raw[key] = data
        return _Snapshot(meta, meta_bytes, raw, ident)
    finally:
        os.close(dfd)


def _save_in_progress(folder: Path, name: str) -> bool:
    """Whether a live process is saving checkpoint `name` in `folder` right now."""
    try:
        entries = [p.name for p in folder.iterdir()]
    except OSError:
        return False
    for entry in entries:
        m = _LEFTOVER.match(entry)
        if m and m["name"] in (name, f"{name}{PREV}") and pid_alive(int(m["pid"])):
            return True
    return False


def _read_again_while_moving(read: Any, source: Path) -> Any:
    """`read(patient)`, started again while saves keep moving what it reads (a bounded number
    of times, with short waits: a swap's two renames take microseconds). The last attempt is
    not `patient`: it no longer waits for a save it believes in progress (the pid in a killed
    save's leftover may have been given to another process)."""
    for attempt in range(READ_ATTEMPTS):
        try:
            return read(attempt < READ_ATTEMPTS - 1)
        except _Moved:
            time.sleep(min(0.002 * (attempt + 1), 0.05))
    raise UserInputError(f"{source} kept being replaced by new saves while it was read; "
                         "try again (or read a copy of it)")


def resolve(source: str | Path, prefer: str = "best") -> Path:
    """The checkpoint directory a run directory, checkpoint directory or file in one means
    (without checking its contents; `load_checkpoint` does)."""
    return _read_again_while_moving(lambda patient: _locate(Path(source), prefer, False,
                                                            patient)[0], Path(source))


def _locate(p: Path, prefer: str, need: Collection[str] | None | bool, patient: bool = False
            ) -> tuple[Path, _Snapshot | None, str | None]:
    """(checkpoint directory, its snapshot, why another was passed over); `need` False: the
    directory only, nothing read."""
    check = need is not False
    if p.is_file():
        p = p.parent
    if not p.exists():
        if patient and _save_in_progress(p.parent, p.name):
            raise _Moved(str(p))  # between a swap's two renames: back in an instant
        # `RUN/last` itself, gone in the middle of a swap a kill stopped: `.prev` stands in
        prev = p.with_name(p.name + PREV)
        if (prev / META).is_file():
            return _pick(list(_candidates(p.parent, p.name))[1:], p, need, check, str(p),
                         patient)
        raise UserInputError(f"{p} does not exist (give a run directory or a checkpoint)")
    if (p / META).is_file():
        return p, (_snapshot(p, need) if check else None), None  # type: ignore[arg-type]
    order = (prefer, "last" if prefer == "best" else "best")
    cands = [c for name in order for c in _candidates(p, name)]
    if not any((c / META).is_file() for c in cands):
        if patient and any(_save_in_progress(p, name) for name in order):
            raise _Moved(str(p))
        raise UserInputError(f"{p} holds no convzoo checkpoint "
                             f"(looked for {META} in it and in its best/ and last/)")
    # the checkpoint asked for: the preferred one where it exists, else the other
    wanted = next((name for name in order if (p / name).exists()
                   or (p / f"{name}{PREV}").exists()), prefer)
    return _pick(cands, p, need, check, str(p / wanted), patient)


def _pick(cands: list[Path], where: Path, need: Any, check: bool, wanted: str,
          patient: bool = False) -> tuple[Path, _Snapshot | None, str | None]:
    """The first of `cands` that is a complete checkpoint, and why the ones before it were
    passed over (said only when a damaged one was passed over or a `.prev`/`.old` is used:
    a run with no best/ yet simply gives its last/, as it always has)."""
    damaged: list[str] = []
    missing: list[str] = []
    for c in cands:
        standby = c.name.endswith(PREV) or c.name.endswith(".old")
        if not (c / META).is_file():
            if patient and not standby and _save_in_progress(c.parent, c.name):
                raise _Moved(str(c))  # between a swap's two renames: back in an instant
            if not standby and c.exists():
                missing.append(f"{c / META} is missing")
            continue
        if not check:
            return c, None, None
        try:
            snap = _snapshot(c, need)
        except UserInputError as e:
            damaged.append(str(e))
            continue
        note = None
        if damaged or missing or standby:
            why = "; ".join(damaged + missing) or f"{wanted} is missing"
            note = f"loaded {c} instead of {wanted}: {why}"
        return c, snap, note
    raise UserInputError(f"no usable checkpoint in {where}: " + "; ".join(damaged + missing))


def _other_checkpoints(path: Path) -> str:
    """What to use instead of the damaged checkpoint `path`: the other checkpoints of its run
    that read whole and check out (none named that does not)."""
    others = [c for name in RUN_CHECKPOINTS for c in _candidates(path.parent, name)
              if c.name != path.name and (c / META).is_file()]
    if not others:
        return ""
    intact = []
    for c in others:
        try:
            _snapshot(c, None)
        except (UserInputError, _Moved):
            continue
        intact.append(str(c))
    return (f"; use another checkpoint of the run: {', '.join(intact)}" if intact
            else "; no other checkpoint of this run is intact either")


def load_checkpoint(source: str | Path, prefer: str = "best",
                    need: Collection[str] | None = None) -> Checkpoint:
    """Open a checkpoint: a run directory (its `prefer`red checkpoint, falling back to the
    previous one when it is missing or damaged), a checkpoint directory or a file in one.

    checkpoint.json and the tensor files of the parts in `need` ('model', 'state', 'ema';
    None: every part) are read at once and checked; damage to a part not needed (a scorer
    needs no optimiser state) does not count against the checkpoint. A fallback is logged and
    recorded in `Checkpoint.fallback`."""
    p = Path(source)
    explicit = (p.parent if p.is_file() else p) / META
    if explicit.is_file():
        path = explicit.parent
        try:
            snap = _read_again_while_moving(lambda _: _snapshot(path, need), path)
        except UserInputError as e:
            raise UserInputError(f"{e}{_other_checkpoints(path)}") from None
        return Checkpoint(path, snap.meta, fallback=None, verified=True, _raw=snap.raw,
                          _ident=snap.ident)
    path, snap, note = _read_again_while_moving(lambda patient: _locate(p, prefer, need, patient),
                                              p)
    assert snap is not None
    if note:
        log.warning("%s", note)
    return Checkpoint(path, snap.meta, fallback=note, verified=True, _raw=snap.raw,
                      _ident=snap.ident)


def model_from_checkpoint(ckpt: Checkpoint, *, ema: bool = True,
                          device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model the checkpoint describes and load its weights (EMA ones if present)."""
    from ..registry import create_model
    from ..weights import load_state

    name = ckpt.meta.get("model")
    if not name:
        raise UserInputError(f"checkpoint {ckpt.path} does not name its model")
    args = ckpt.meta.get("model_args", {})
    state = ckpt.ema_model_state() if ema and ckpt.has_ema else ckpt.model_state
    # Built first on the meta device (no memory) and compared with the stored tensors, so
    # arguments that do not describe these weights fail before anything is allocated.
    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in create_model(name, **args).state_dict().items()}
    except Exception as e:  # noqa: BLE001 - a constructor refusing arguments, in any way
        raise UserInputError(f"{ckpt.meta_file}: cannot build {name!r} with its model_args "
                             f"({_first_line(e)})") from None
    stored = {k: tuple(v.shape) for k, v in state.items()}
    differ = sorted(k for k in set(shapes) | set(stored) if shapes.get(k) != stored.get(k)
                    and not k.endswith("num_batches_tracked"))
    if differ:
        k = differ[0]
        raise UserInputError(f"checkpoint {ckpt.path}: its weights do not fit the {name} its "
                             f"model_args describe ({k}: {stored.get(k, 'absent')} stored, "
                             f"{shapes.get(k, 'absent')} built; {len(differ)} tensors differ)")
    model = create_model(name, **args)
    load_state(model, dict(state), str(ckpt.path))
    model.class_names = ckpt.class_names  # type: ignore[assignment]
    return model.to(device).eval()
