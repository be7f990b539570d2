"""What the lessons in `lessons/` share: the small-scale switch, where outputs go, running a
`convzoo` command in the lesson's own process, and showing a picture or a table.

A lesson runs at full scale by default (the lecture's data and budget). With
CONVZOO_LESSON_SMALL=1 it picks tiny data and a few steps, so the test suite can run every
lesson in seconds. Its outputs go to CONVZOO_LESSON_OUT when that is set, else to a fresh
temporary folder: a lesson never writes into the source tree.

In a notebook `show` displays the picture or the markdown table inline; in a plain `python
lessons/x.py` it prints the path, so the same file serves both.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from .errors import ConvzooError

SMALL_VAR = "CONVZOO_LESSON_SMALL"
OUT_VAR = "CONVZOO_LESSON_OUT"


def small() -> bool:
    """True where the lesson should run at its small scale (CONVZOO_LESSON_SMALL=1)."""
    return os.environ.get(SMALL_VAR) == "1"


def out_dir(lesson: str) -> Path:
    """The folder a lesson writes into: CONVZOO_LESSON_OUT/LESSON when set, else a new
    temporary folder (created either way)."""
    root = os.environ.get(OUT_VAR)
    if root:
        out = Path(root) / lesson
        out.mkdir(parents=True, exist_ok=True)
        return out
    return Path(tempfile.mkdtemp(prefix=f"convzoo-lesson-{lesson}-"))


class _Tee(io.TextIOBase):
    """Writes to the lesson's output and keeps a copy."""

    def __init__(self, shown: TextIO) -> None:
        self.shown, self.kept = shown, io.StringIO()

    def write(self, text: str) -> int:
        self.kept.write(text)
        return self.shown.write(text)

    def flush(self) -> None:
        self.shown.flush()


def convzoo(*argv: object) -> str:
    """Run `convzoo ARGV...` in this process, as on the command line, and return what it
    printed (it is shown as well: `--format json` output can be read back with json.loads).
    A command that fails stops the lesson with its one-line message, so a lesson that stops
    working fails."""
    from .cli import main

    words = [str(a) for a in argv]
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        code = main(words)
    if code != 0:
        raise ConvzooError(f"`convzoo {' '.join(words)}` exited with {code}")
    return tee.kept.getvalue()


def show(path: str | Path) -> None:
    """Display a picture (.png, .svg) or a markdown file inline in a notebook; elsewhere print
    its path (and a markdown file's text)."""
    path = Path(path)
    if not path.is_file():
        raise ConvzooError(f"{path} was not written")
    try:
        from IPython import get_ipython
        from IPython.display import SVG, Image, Markdown, display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        suffix = path.suffix.lower()
        if suffix == ".png":
            display(Image(filename=str(path)))
        elif suffix == ".svg":
            display(SVG(filename=str(path)))
        elif suffix == ".md":
            display(Markdown(path.read_text(encoding="utf-8")))
        else:
            print(path)
        return
    print(f"[{path}]")
    if path.suffix.lower() == ".md":
        print(path.read_text(encoding="utf-8"))


__all__ = ["OUT_VAR", "SMALL_VAR", "convzoo", "out_dir", "show", "small"]
