"""Checkpoints: tensors in safetensors, everything else in JSON; nothing is ever unpickled.

A checkpoint is a directory:
  model.safetensors      the model's state_dict
  state.safetensors      the tensors of the optimiser, the schedule, the RNG states and the
                         caller's extra state (a loader's position, say)
  ema.safetensors        the parameter EMA (a model state_dict under `module.`), when on
  checkpoint.json        model name and arguments, config, epoch, step, metrics, class names,
                         the non-tensor parts of the optimiser/schedule/RNG/extra state, the
                         SHA-256 of every tensor file, versions

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

Reading checks every field it uses and the SHA-256 of every tensor file: a truncated,
bit-flipped or hand-edited checkpoint is a one-line `UserInputError` naming the file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConvzooError, UserInputError
from .disk import (  # noqa: F401  (tests replace _write_bytes here)
    PREV,
    _fsync_dir,
    _remove,
    _swap_in,
    _write_bytes,
    clean_leftovers,
    pid_alive,
)
from .state import (  # noqa: F401
    Generators,
    join_state,
    rng_state,
    set_rng_state,
    split_state,
)

log = logging.getLogger("convzoo.train")

FORMAT = "convzoo.checkpoint"
#: 2 added the file digests and the extra (mid-epoch) state; version 1 checkpoints still load.
VERSION = 2
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
    text = json.dumps(doc, indent=1, default=repr).encode()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_leftovers(path.parent)
        tmp.mkdir()
        for name, data in blobs.values():
            _write_bytes(tmp / name, data)
        _write_bytes(tmp / META, text)  # last: a directory with its META is complete
        _fsync_dir(tmp)
        _swap_in(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise _disk_error(e, path) from None
    return path


def copy_checkpoint(src: str | Path, dst: str | Path) -> None:
    """`dst` becomes a copy of `src` (hard links where possible: files are never rewritten)."""
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        clean_leftovers(dst.parent)
        tmp.mkdir(parents=True)
        for f in src.iterdir():
            try:
                os.link(f, tmp / f.name)
            except OSError:
                shutil.copy2(f, tmp / f.name)
                with open(tmp / f.name, "rb") as g:
                    os.fsync(g.fileno())
        _fsync_dir(tmp)
        _swap_in(tmp, dst)
    except OSError as e:
        _remove(tmp)
        raise _disk_error(e, dst) from None


# ---- reading -------------------------------------------------------------------------------

@dataclass
class Checkpoint:
    path: Path
    meta: dict[str, Any]
    _tensors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    #: Why this checkpoint was loaded instead of the one asked for (None: it is that one).
    fallback: str | None = None
    #: Its files' digests were checked when it was opened (not again on reading).
    verified: bool = False

    @property
    def meta_file(self) -> Path:
        return self.path / META

    def tensors(self, which: str) -> dict[str, torch.Tensor]:
        """'model', 'state' or 'ema': that file's tensors, read (and checked) on first use."""
        if which not in self._tensors:
            name = self.meta.get("files", {}).get(which)
            if name is None:
                raise UserInputError(f"checkpoint {self.path} has no {which} state")
            digest = None if self.verified else self.meta.get("sha256", {}).get(name)
            self._tensors[which] = read_tensors(self.path / name, digest)
        return self._tensors[which]

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
                                 "damaged, use another one (the run's last.prev or best)") \
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


def read_tensors(path: Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of one safetensors file; `sha256`, when given, must match its bytes."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise UserInputError(f"checkpoint file {path} is missing")
    try:
        if sha256 is not None and _sha256(path) != sha256:
            raise UserInputError(f"checkpoint file {path} is corrupt or truncated (its SHA-256 "
                                 "is not the one recorded when it was saved); use another "
                                 "checkpoint (e.g. the run's best/ or last.prev/)")
        return load_file(str(path))
    except UserInputError:
        raise
    except Exception as e:  # noqa: BLE001 - any reader error means a damaged file
        raise UserInputError(f"checkpoint file {path} is corrupt or truncated "
                             f"({_first_line(e)}); use another checkpoint "
                             "(e.g. the run's best/ or last/)") from None


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


def _read_meta(path: Path) -> dict[str, Any]:
    file = path / META
    try:
        text = file.read_bytes().decode("utf-8")
        meta = json.loads(text)
    except OSError as e:
        raise UserInputError(f"checkpoint {file} cannot be read ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise UserInputError(f"checkpoint {file} is corrupt (not valid JSON: "
                             f"{_first_line(e)})") from None
    return check_meta(meta, file)


def _verify_files(path: Path, meta: dict[str, Any]) -> None:
    """Every tensor file is there and has its recorded digest (or, in a version 1 checkpoint
    that recorded none, at least a safetensors header that fits the file)."""
    digests = meta.get("sha256", {})
    for name in meta["files"].values():
        f = path / name
        if not f.is_file():
            raise UserInputError(f"checkpoint file {f} is missing")
        if name in digests:
            if _sha256(f) != digests[name]:
                raise UserInputError(f"checkpoint file {f} is corrupt or truncated "
                                     "(SHA-256 mismatch)")
        else:
            _check_safetensors_header(f)


def _check_safetensors_header(f: Path) -> None:
    size = f.stat().st_size
    with open(f, "rb") as fh:
        head = fh.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        try:
            header = json.loads(fh.read(n)) if 0 < n <= size - 8 else None
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            header = None
    if not isinstance(header, dict):
        raise UserInputError(f"checkpoint file {f} is corrupt or truncated (bad header)")
    ends = [v.get("data_offsets", [0, 0])[1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict)
            and isinstance(v.get("data_offsets"), list) and len(v["data_offsets"]) == 2]
    if 8 + n + max(ends, default=0) != size:
        raise UserInputError(f"checkpoint file {f} is corrupt or truncated (its size does not "
                             "match its header)")


def resolve(source: str | Path, prefer: str = "best") -> Path:
    """The checkpoint directory a run directory, checkpoint directory or file in one means
    (without checking its contents; `load_checkpoint` does)."""
    return _locate(Path(source), prefer, check=False)[0]


def _locate(p: Path, prefer: str, check: bool) -> tuple[Path, dict[str, Any] | None, str | None]:
    if p.is_file():
        p = p.parent
    if not p.exists():
        # `RUN/last` itself, gone in the middle of a swap: its `.prev` stands in
        prev = p.with_name(p.name + PREV)
        if (prev / META).is_file():
            return _pick(list(_candidates(p.parent, p.name))[1:], p, check, str(p))
        raise UserInputError(f"{p} does not exist (give a run directory or a checkpoint)")
    if (p / META).is_file():
        return p, (_read_meta(p) if check else None), None
    order = (prefer, "last" if prefer == "best" else "best")
    cands = [c for name in order for c in _candidates(p, name)]
    if not any((c / META).is_file() for c in cands):
        raise UserInputError(f"{p} holds no convzoo checkpoint "
                             f"(looked for {META} in it and in its best/ and last/)")
    return _pick(cands, p, check, str(p / prefer))


def _pick(cands: list[Path], where: Path, check: bool,
          wanted: str) -> tuple[Path, dict[str, Any] | None, str | None]:
    """The first of `cands` that is a complete checkpoint, and why the ones before it were
    passed over (said only when a damaged one was passed over or a `.prev`/`.old` is used:
    a run with no best/ yet simply gives its last/, as it always has)."""
    damaged: list[str] = []
    for c in cands:
        if not (c / META).is_file():
            continue
        if not check:
            return c, None, None
        try:
            meta = _read_meta(c)
            _verify_files(c, meta)
        except UserInputError as e:
            damaged.append(str(e))
            continue
        note = None
        standby = c.name.endswith(PREV) or c.name.endswith(".old")
        if damaged or standby:
            why = "; ".join(damaged) if damaged else f"{wanted} is missing"
            note = f"loaded {c} instead of {wanted}: {why}"
        return c, meta, note
    raise UserInputError(f"no usable checkpoint in {where}: " + "; ".join(damaged))


def load_checkpoint(source: str | Path, prefer: str = "best") -> Checkpoint:
    """Open a checkpoint: a run directory (its `prefer`red checkpoint, falling back to the
    previous one when it is missing or damaged), a checkpoint directory or a file in one.

    A checkpoint directory given by name is opened as it is: its tensor files are checked when
    first read. A fallback is logged and recorded in `Checkpoint.fallback`."""
    p = Path(source)
    explicit = (p.parent if p.is_file() else p) / META
    if explicit.is_file():
        path = explicit.parent
        return Checkpoint(path, _read_meta(path))
    path, meta, note = _locate(p, prefer, check=True)
    assert meta is not None
    if note:
        log.warning("%s", note)
    return Checkpoint(path, meta, fallback=note, verified=True)


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
