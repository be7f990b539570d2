"""The IDX format of MNIST and Fashion-MNIST, raw or gzipped.

Header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then
each dimension as a big-endian 32-bit integer; the data follows, row-major, big-endian.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import UserInputError

IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (.gz is decompressed); a bad file names itself."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = bytearray(f.read())
        else:
            data = bytearray(path.read_bytes())
    except (OSError, EOFError, zlib.error) as e:
        raise UserInputError(f"{path}: cannot read ({e}); replace the file") from None
    if len(data) < 4 or data[0] or data[1] or data[2] not in IDX_TYPES or not data[3]:
        magic = data[:4].hex() if len(data) >= 4 else "missing"
        raise UserInputError(f"{path}: not an IDX file (magic number {magic}, expected "
                             "00000803 for images or 00000801 for labels)")
    ndim, dtype = data[3], IDX_TYPES[data[2]]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserInputError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", bytes(data[4:header]))
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        raise UserInputError(f"{path}: {len(data) - header} bytes of data where the header "
                             f"{'x'.join(map(str, dims))} needs {expected}; the file is "
                             "truncated or corrupt")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file's bytes for an unsigned-byte array (the inverse of read_idx, for tests and
    for saving small data sets)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()
