"""How many loader worker processes to start: as many as asked, but no more than the cores
that are free besides the one the training process itself keeps busy (the thread count in
:mod:`convzoo.runtime.device` follows the same free cores). More workers than cores only
swap each other out, and torch warns that the loader may freeze."""

from __future__ import annotations

import logging

log = logging.getLogger("convzoo.data")
_said: set[tuple[int, int]] = set()


def choose_workers(asked: int, cores: int | None = None, load: float | None = None
                   ) -> tuple[int, str]:
    """(workers to use, why): `asked` capped at the free cores less one."""
    from ..runtime.device import free_cores, other_work, usable_cores

    if asked <= 0:
        return 0, "as asked"
    cores = usable_cores() if cores is None else cores
    if load is None:
        load = other_work()[0]
    free = free_cores(cores, load)
    n = min(asked, max(0, free - 1))
    if n == asked:
        return n, "as asked"
    return n, (f"{asked} asked; {cores} core{'s' if cores != 1 else ''}, {free} free, one "
               "kept for training")


def workers_for(asked: int) -> int:
    """`choose_workers`, said in the log once per choice."""
    n, why = choose_workers(asked)
    if (asked, n) not in _said and n != asked:
        _said.add((asked, n))
        log.warning("loader: %d worker process%s (%s)", n, "es" if n != 1 else "", why)
    return n
