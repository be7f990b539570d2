"""A restricted unpickler for the CIFAR python batches.

CIFAR-10 and CIFAR-100 are distributed as pickles, and unpickling can run any code a file
names. This unpickler resolves no global except the handful that rebuild a plain numeric numpy
array (CIFAR's `data`); dicts, lists, strings, bytes and numbers need no globals at all. So a
file can only produce those values, and one that names anything else (`os.system`, a class,
a module) is refused before anything is called.

Why the allowed globals are safe:

- ``numpy.ndarray`` and ``numpy.core.multiarray._reconstruct`` (``numpy._core`` in numpy 2):
  ``_reconstruct(ndarray, shape, dtype)`` makes an empty base-class array that ``__setstate__``
  then fills from the pickled bytes; no subclass can be named, since none is allowed.
- ``numpy.dtype``: wrapped so that only boolean, integer and floating dtypes are made; object
  dtypes (which would hold arbitrary Python objects) and structured dtypes are refused.
- ``numpy.core.numeric._frombuffer``: protocol 5's way to make an array from bytes.
- ``_codecs.encode``: how Python 3 writes bytes in a protocol-2 pickle; allowed only with the
  latin-1 codec, which turns a str into the same bytes.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserInputError


class UnsafePickleError(UserInputError):
    """A pickle that names something other than plain data and numeric numpy arrays."""


def _numpy_core() -> Any:
    core = getattr(np, "_core", None)
    if core is None or not hasattr(core, "multiarray"):  # numpy < 2
        import numpy.core as core  # noqa: PLC0415
    return core


def _numeric_dtype(*args: Any, **kwargs: Any) -> np.dtype:
    dt = np.dtype(*args, **kwargs)
    if dt.kind not in "biuf" or dt.fields is not None or dt.subdtype is not None:
        raise pickle.UnpicklingError(f"numpy dtype {dt!s} (only numeric dtypes are allowed)")
    return dt


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} (only latin-1)")
    return text.encode("latin-1", errors)


def _allowed() -> dict[tuple[str, str], Any]:
    core = _numpy_core()
    reconstruct = core.multiarray._reconstruct
    frombuffer = core.numeric._frombuffer
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray,
                                           ("numpy", "dtype"): _numeric_dtype,
                                           ("_codecs", "encode"): _latin1_encode}
    for mod in ("numpy.core", "numpy._core"):  # files written by numpy 1 or numpy 2
        allowed[(f"{mod}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{mod}.numeric", "_frombuffer")] = frombuffer
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Refuses every global but the few listed in the module docstring."""

    def __init__(self, file: Any, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._allowed = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("a persistent id")


def safe_load(path: str | Path) -> Any:
    """Unpickle a data file with the restricted unpickler; Python 2 strings come back as bytes,
    as the CIFAR files were written by Python 2."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserInputError(f"{path}: cannot read it ({e.strerror})") from None
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise UnsafePickleError(
            f"{path}: refused to unpickle it, it names {e} (convzoo reads data pickles with a "
            "restricted unpickler that allows only plain data and numeric numpy arrays); "
            "replace the file with the original download") from None
    except Exception as e:  # noqa: BLE001 - a damaged pickle fails in many ways, all of them
        # the file's fault; nothing it names was called (find_class allows no callable that
        # could act), so reporting it is all there is to do
        first = (str(e).strip().splitlines() or [""])[0][:120]
        raise UserInputError(f"{path}: not a readable data pickle ({type(e).__name__}: "
                             f"{first}); replace the file with the original download") from None
