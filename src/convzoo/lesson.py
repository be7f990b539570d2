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
import tempfile
from pathlib import Path

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


def _run(argv: tuple[object, ...]) -> None:
    from .cli import main

    words = [str(a) for a in argv]
    code = main(words)
    if code != 0:
        raise ConvzooError(f"`convzoo {' '.join(words)}` exited with {code}")


def convzoo(*argv: object) -> None:
    """Run `convzoo ARGV...` in this process, as on the command line. A command that fails
    stops the lesson with its one-line message, so a lesson that stops working fails."""
    _run(argv)


def convzoo_text(*argv: object) -> str:
    """`convzoo` that returns what the command printed instead of showing it, e.g. its
    `--format json` output to read back with json.loads (progress goes to stderr as ever)."""
    kept = io.StringIO()
    with contextlib.redirect_stdout(kept):
        _run(argv)
    return kept.getvalue()


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


__all__ = ["OUT_VAR", "SMALL_VAR", "convzoo", "convzoo_text", "out_dir", "show", "small"]
