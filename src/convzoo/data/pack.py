"""Packed image sets: every image of a folder written once, pre-resized, into one file that is
read by memory map (FFCV's idea, with nothing to compile).

Layout of a pack (all integers little-endian; nothing in it is pickled):

    0      64-byte prefix: b"CONVZOOPACK\\0", format version (u32), header offset (u64),
           header length (u64), CRC-32 of the header (u32), zeros
    64     the records, one after another: JPEG bytes, or raw uint8 H x W x C pixels
    ...    the index: one INDEX_DTYPE row per image (offset, length, CRC-32, label, height,
           width, split, channels), its CRC-32 in the header
    ...    the header: UTF-8 JSON (classes, codec, sizes, index place, the source, skipped files)

A pack is written to FILE.partial, with FILE.partial.idx (the index so far) and
FILE.partial.json (the settings) beside it; a stopped `convzoo pack` started again with the
same settings goes on from the last whole record. Only a finished pack is renamed to FILE.
Reading refuses, in one line naming the file, a pack that is truncated, whose header or index
does not match its checksum, or that a newer convzoo wrote; each record's checksum is checked
the first time a process reads it (checking on every read would cost a raw record about a
third of its reading time).
"""

from __future__ import annotations

import functools
import io
import json
import os
import struct
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ..errors import UserInputError
from .images import BadImageError, read_image, shown

MAGIC = b"CONVZOOPACK\0"
VERSION = 1
PREFIX = struct.Struct("<12sIQQI")
PREFIX_SIZE = 64
INDEX_DTYPE = np.dtype([("offset", "<u8"), ("length", "<u4"), ("crc", "<u4"), ("label", "<i4"),
                        ("height", "<u2"), ("width", "<u2"), ("split", "u1"),
                        ("channels", "u1"), ("pad", "<u2")])
TRAIN, TEST = 0, 1


class PackError(UserInputError):
    """A pack that cannot be read as it is: truncated, altered, or from a newer format."""


class PackRecord(NamedTuple):
    """Where a FolderSplit's sample lives when it comes from a pack: record `index` of `pack`.
    Printed as PACK#INDEX wherever a path would be."""

    pack: str
    index: int

    def __str__(self) -> str:
        return f"{self.pack}#{self.index}"


# ---------------------------------------------------------------- reading


class Pack:
    """An open pack: its header, its index, and its records through a memory map."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        p = Path(path)
        if not p.is_file():
            raise UserInputError(f"pack {shown(p)} does not exist; make one with "
                                 "`convzoo pack imagefolder:PATH --out FILE`")
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(PREFIX_SIZE)
            if len(head) < PREFIX.size or not head.startswith(MAGIC):
                raise PackError(f"{shown(p)} is not a convzoo pack (it does not start with "
                                f"{MAGIC[:-1].decode()})")
            _, version, h_off, h_len, h_crc = PREFIX.unpack_from(head)
            if version > VERSION:
                raise PackError(f"{shown(p)} was written by a newer convzoo (pack format "
                                f"{version}; this one reads up to {VERSION}): upgrade convzoo")
            if h_off + h_len > size or h_off < PREFIX_SIZE:
                raise PackError(f"{shown(p)} is truncated ({size:,} bytes; its header ends at "
                                f"{h_off + h_len:,}): pack it again")
            f.seek(h_off)
            raw = f.read(h_len)
            if zlib.crc32(raw) != h_crc:
                raise PackError(f"{shown(p)} is damaged: its header does not match its "
                                "checksum; pack it again")
            self.header: dict[str, Any] = json.loads(raw)
            ix = self.header["index"]
            if ix["offset"] + ix["length"] > h_off:
                raise PackError(f"{shown(p)} is damaged: its index overlaps its header")
            f.seek(ix["offset"])
            ibytes = f.read(ix["length"])
        if zlib.crc32(ibytes) != ix["crc32"] or len(ibytes) % INDEX_DTYPE.itemsize:
            raise PackError(f"{shown(p)} is damaged: its index does not match its checksum; "
                            "pack it again")
        self.index = np.frombuffer(ibytes, INDEX_DTYPE).copy()
        ends = self.index["offset"] + self.index["length"]
        if len(ends) and int(ends.max()) > ix["offset"]:
            raise PackError(f"{shown(p)} is damaged: a record runs past the records' end")
        self.raw = self.header["codec"] == "raw"
        self.classes: list[str] = list(self.header["classes"])
        self._map: np.ndarray | None = None
        self._checked = np.zeros(len(self.index), dtype=bool)

    def __len__(self) -> int:
        return len(self.index)

    def _bytes(self) -> np.ndarray:
        if self._map is None:  # opened on first use, so each worker process maps it itself
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
        return self._map

    def record(self, i: int) -> np.ndarray:
        """Record i's stored bytes (a read-only view; checked against its checksum on this
        process's first read of it), as a flat uint8 array (JPEG) or H x W x C (raw)."""
        row = self.index[i]
        off, n = int(row["offset"]), int(row["length"])
        data = self._bytes()[off:off + n]
        if not self._checked[i]:
            if len(data) != n or zlib.crc32(data) != int(row["crc"]):
                raise PackError(f"{shown(self.path)} is damaged: record {i} does not match "
                                "its checksum; pack it again")
            self._checked[i] = True
        if self.raw:
            return data.reshape(int(row["height"]), int(row["width"]), int(row["channels"]))
        return data

    def labels(self) -> np.ndarray:
        return self.index["label"].astype(np.int64)


def record_image(key: PackRecord) -> Any:
    """A pack's record as a PIL image (for thumbnails and reports)."""
    from PIL import Image

    pack = open_pack(key.pack)
    data = pack.record(key.index)
    if pack.raw:
        return Image.fromarray(np.array(data[..., 0] if data.shape[-1] == 1 else data))
    return Image.open(io.BytesIO(data.tobytes()))


@functools.lru_cache(maxsize=8)
def open_pack(path: str) -> Pack:
    """The pack at `path`, opened once per process."""
    return Pack(path)


def load_packed(path: str, seed: int = 0) -> Any:
    """`packed:FILE` as a DataSet: the pack's own train and test splits, as FolderSplits whose
    samples are PackRecords (so everything that takes an image folder takes a pack)."""
    from .dataset import DataSet, FolderSplit
    from .preprocess import IMAGENET_MEAN, IMAGENET_STD

    p = str(Path(path).expanduser())
    pack = open_pack(p)
    split, labels = pack.index["split"], pack.index["label"].tolist()
    train = [(PackRecord(p, i), labels[i]) for i in np.flatnonzero(split == TRAIN).tolist()]
    test = [(PackRecord(p, i), labels[i]) for i in np.flatnonzero(split == TEST).tolist()]
    if not train:
        raise UserInputError(f"pack {shown(p)} holds no training images")
    size = tuple(pack.header["image_size"])
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    if size[0] == 1:
        mean, std = (sum(mean) / 3,), (sum(std) / 3,)
    return DataSet(name=f"packed:{path}", classes=list(pack.classes), train=FolderSplit(train),
                   test=FolderSplit(test), image_size=size, mean=mean, std=std,  # type: ignore[arg-type]
                   source=f"{p} ({pack.header['codec']}, max side {pack.header['max_side']}, "
                          f"from {pack.header['source']})")


# ---------------------------------------------------------------- writing


@dataclass
class PackResult:
    path: Path
    images: int
    bytes: int
    seconds: float
    skipped: list[tuple[str, str]] = field(default_factory=list)
    resumed_from: int = 0


def _shrunk(img: torch.Tensor, max_side: int) -> torch.Tensor:
    """The image with its longer side at most max_side (antialiased bilinear, uint8)."""
    from .decode import resize_uint8

    h, w = img.shape[-2:]
    if max(h, w) <= max_side:
        return img
    s = max_side / max(h, w)
    return resize_uint8(img, (max(1, round(h * s)), max(1, round(w * s))))


def encode(path: str, channels: int, max_side: int, quality: int | None) -> tuple[bytes, int, int]:
    """One image as stored: (bytes, height, width). quality None: raw H x W x C pixels."""
    img = _shrunk(read_image(path, channels=channels), max_side)
    c, h, w = img.shape
    hwc = img.permute(1, 2, 0).contiguous().numpy()
    if quality is None:
        return hwc.tobytes(), h, w
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(hwc[..., 0] if c == 1 else hwc).save(buf, "JPEG", quality=quality)
    return buf.getvalue(), h, w


def _progress(done: int, total: int, rate: float, nbytes: int, final: bool = False) -> None:
    tty = sys.stderr.isatty()
    line = (f"packed {done:,}/{total:,} images ({100 * done / max(total, 1):.0f}%), "
            f"{rate:.0f} img/s, {nbytes / 1e6:.1f} MB")
    sys.stderr.write(("\r" + line + ("\n" if final else "")) if tty else line + "\n")
    sys.stderr.flush()


def write_pack(source: str, out: str | os.PathLike, *, max_side: int = 256,
               quality: int | None = 90, seed: int = 0, progress: bool = True,
               every_s: float = 2.0,
               stop_after: int | None = None) -> PackResult:
    """Pack the image folder `source` (imagefolder's layout and splits) into `out`.

    quality None stores raw pixels. Unreadable images are skipped and listed. `stop_after`
    stops (as an interruption would) after that many new records: for tests of restarting."""
    from .folders import load_imagefolder

    if max_side < 8:
        raise UserInputError(f"--max-side must be at least 8, got {max_side}")
    if quality is not None and not 1 <= quality <= 100:
        raise UserInputError(f"--quality must be 1..100, got {quality}")
    out = Path(out).expanduser()
    if not out.parent.is_dir():
        raise UserInputError(f"{shown(out.parent)} does not exist: create it or choose --out "
                             "elsewhere")
    ds = load_imagefolder(source, seed)
    items = ([(p, y, TRAIN) for p, y in ds.train.samples]
             + [(p, y, TEST) for p, y in ds.test.samples])
    channels = ds.image_size[0]
    settings = {"source": str(Path(source).expanduser().resolve()), "max_side": max_side,
                "codec": "raw" if quality is None else "jpeg", "quality": quality,
                "seed": seed, "channels": channels, "classes": ds.classes,
                "files": zlib.crc32("\n".join(p for p, _, _ in items).encode()),
                "count": len(items)}
    partial = out.with_name(out.name + ".partial")
    side_idx = out.with_name(out.name + ".partial.idx")
    side_json = out.with_name(out.name + ".partial.json")
    skipped_file = out.with_name(out.name + ".partial.skipped")
    rows: list[np.ndarray] = []
    skipped: list[tuple[str, str]] = []
    start = 0
    if (partial.is_file() and side_idx.is_file() and side_json.is_file()
            and json.loads(side_json.read_text()) == settings):
        done = np.frombuffer(side_idx.read_bytes(), INDEX_DTYPE)
        done = done[: len(side_idx.read_bytes()) // INDEX_DTYPE.itemsize]
        size = partial.stat().st_size
        ends = done["offset"] + done["length"]
        keep = int(np.searchsorted(np.maximum.accumulate(ends) > size, True)) if len(done) \
            else 0
        done = done[:keep]
        rows = [done]
        start = keep
        if skipped_file.is_file():
            skipped = [tuple(json.loads(line)) for line in  # type: ignore[misc]
                       skipped_file.read_text().splitlines() if line.strip()]
            before = {p for p, _, _ in items[:start]}
            skipped = [s for s in skipped if s[0] in before]
        end = int(ends[:keep].max()) if keep else PREFIX_SIZE
        end = max(end, PREFIX_SIZE)
        with open(partial, "r+b") as f:
            f.truncate(end)
        with open(side_idx, "r+b") as f:
            f.truncate(keep * INDEX_DTYPE.itemsize)
    else:
        with open(partial, "wb") as f:
            f.write(b"\0" * PREFIX_SIZE)
        side_idx.write_bytes(b"")
        skipped_file.write_text("")
        side_json.write_text(json.dumps(settings))
    t0 = time.perf_counter()
    last = t0
    new = 0
    with open(partial, "ab") as data, open(side_idx, "ab") as idx, \
            open(skipped_file, "a") as skip:
        offset = data.tell()
        for k in range(start, len(items)):
            path, label, split = items[k]
            row = np.zeros(1, INDEX_DTYPE)
            row["label"], row["split"], row["channels"] = label, split, channels
            try:
                blob, h, w = encode(path, channels, max_side, quality)
            except BadImageError as e:
                skipped.append((e.path, e.reason))
                skip.write(json.dumps([e.path, e.reason]) + "\n")
                skip.flush()
                row["offset"], row["length"] = offset, 0
                row["split"] = 255  # a hole: dropped from the final index
            else:
                data.write(blob)
                row["offset"], row["length"], row["crc"] = offset, len(blob), zlib.crc32(blob)
                row["height"], row["width"] = h, w
                offset += len(blob)
            data.flush()  # the record before its index row: a restart trusts the index
            idx.write(row.tobytes())
            idx.flush()
            rows.append(row)
            new += 1
            now = time.perf_counter()
            if progress and now - last >= every_s:
                _progress(k + 1, len(items), new / (now - t0), offset)
                last = now
            if stop_after is not None and new >= stop_after and k + 1 < len(items):
                raise KeyboardInterrupt
    index = np.concatenate(rows) if rows else np.zeros(0, INDEX_DTYPE)
    index = index[index["split"] != 255]
    if not len(index):
        raise UserInputError(f"none of the {len(items)} images in {shown(source)} could be read")
    ibytes = index.tobytes()
    header = {"format": "convzoo-pack", "version": VERSION, "classes": ds.classes,
              "codec": settings["codec"], "quality": quality, "max_side": max_side,
              "channels": channels, "image_size": list(ds.image_size), "count": len(index),
              "train": int((index["split"] == TRAIN).sum()),
              "test": int((index["split"] == TEST).sum()),
              "source": settings["source"], "split_seed": seed,
              "index": {"offset": offset, "length": len(ibytes), "crc32": zlib.crc32(ibytes)},
              "skipped": [list(s) for s in skipped]}
    hbytes = json.dumps(header).encode()
    with open(partial, "r+b") as f:
        f.seek(offset)
        f.truncate()
        f.write(ibytes)
        f.write(hbytes)
        f.seek(0)
        f.write(PREFIX.pack(MAGIC, VERSION, offset + len(ibytes), len(hbytes),
                            zlib.crc32(hbytes)))
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, out)
    for f in (side_idx, side_json, skipped_file):
        f.unlink(missing_ok=True)
    open_pack.cache_clear()  # a pack of this name opened before is now another file
    secs = time.perf_counter() - t0
    if progress:
        _progress(len(items), len(items), new / max(secs, 1e-9), out.stat().st_size, final=True)
    return PackResult(out, len(index), out.stat().st_size, secs, skipped, start)
