"""Where data set files are looked for: ``data_dir`` (``--data-dir``), ``$CONVZOO_DATA``,
``~/.cache/convzoo`` and ``/usr/share/datasets`` (where Debian's ``dataset-fashion-mnist`` puts
Fashion-MNIST), each under a few natural subfolder names."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import UserInputError

#: Where Debian's dataset-* packages install data sets.
SYSTEM_DIR = Path("/usr/share/datasets")


def search_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The places searched, in order: data_dir, $CONVZOO_DATA, ~/.cache/convzoo, the system's."""
    roots: list[Path] = []
    if data_dir:
        roots.append(Path(data_dir).expanduser())
    env = os.environ.get("CONVZOO_DATA")
    if env:
        roots.append(Path(env).expanduser())
    roots.append(Path.home() / ".cache" / "convzoo")
    roots.append(SYSTEM_DIR)
    unique: list[Path] = []
    for r in roots:
        if r not in unique:
            unique.append(r)
    return unique


def find_folder(roots: Sequence[Path], subfolders: Sequence[str],
                has_files: Callable[[Path], bool], explicit: Path | None = None) -> Path | None:
    """The first `root/sub` (roots in order, then subfolders in order) that `has_files`.

    The explicit --data-dir may also hold the files directly: the user named it for this data
    set. The shared places are not searched at their top level, since MNIST and Fashion-MNIST
    use the same file names there."""
    for root in roots:
        candidates = [root / s for s in subfolders]
        if explicit is not None and root == explicit:
            candidates.append(root)
        for c in candidates:
            if c.is_dir() and has_files(c):
                return c
    return None


def missing(name: str, roots: Sequence[Path], files: str, how: str) -> UserInputError:
    places = ", ".join(str(r) for r in roots)
    return UserInputError(f"data set {name!r} not found: looked for {files} in {places} "
                          f"(and their usual subfolders); {how}")
