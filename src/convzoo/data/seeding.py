"""Seeds derived from several parts (seed, epoch, batch, ...), stable across runs and machines."""

from __future__ import annotations

import hashlib

import torch


def mix_seed(*parts: object) -> int:
    """A 63-bit seed from any parts; Python's hash() is salted per process, so it is not used."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def generator(*parts: object) -> torch.Generator:
    """A CPU generator seeded by the parts. Random numbers are always drawn on the CPU, so the
    same seed gives the same batches whichever device the data then lives on."""
    return torch.Generator().manual_seed(mix_seed(*parts))
