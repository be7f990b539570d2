"""`make lessons`: every lesson in this folder written as a notebook with its outputs.

    python lessons/_notebooks.py [--small] [--out DIR] [LESSON ...]

Each `lessons/NAME.py` (jupytext's percent format) is read with jupytext, run cell by cell in a
fresh Python kernel with nbclient, and written to DIR/NAME.ipynb (default build/lessons, which
git ignores); the files a lesson writes go to DIR/outputs/NAME. `--small` runs the small scale
the test suite uses (CONVZOO_LESSON_SMALL=1). The tools are the `lessons` extra:
`pip install -e '.[lessons]'`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def lessons(names: list[str]) -> list[Path]:
    found = {p.stem: p for p in sorted(HERE.glob("*.py")) if not p.name.startswith("_")}
    unknown = [n for n in names if n not in found]
    if unknown:
        sys.exit(f"no lesson named {', '.join(unknown)}; the lessons: {', '.join(found)}")
    return [found[n] for n in names] if names else list(found.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", metavar="LESSON", help="default: all")
    parser.add_argument("--small", action="store_true", help="the small scale (seconds each)")
    parser.add_argument("--out", default=str(HERE.parent / "build" / "lessons"), metavar="DIR")
    parser.add_argument("--timeout", type=int, default=3600, metavar="S",
                        help="seconds a cell may run")
    args = parser.parse_args(argv)
    try:
        import jupytext
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError as e:
        sys.exit(f"make lessons needs the lessons extra ({e.name} is missing): "
                 "pip install -e '.[lessons]'")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # the kernel inherits this environment: the scale and where the lessons write
    os.environ["CONVZOO_LESSON_OUT"] = str((out / "outputs").resolve())
    if args.small:
        os.environ["CONVZOO_LESSON_SMALL"] = "1"
    failed = []
    for path in lessons(args.lessons):
        nb = jupytext.read(path)
        start = time.perf_counter()
        client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(out)}})
        try:
            client.execute()
        except CellExecutionError as e:
            last = [ln for ln in str(e).strip().splitlines() if ln.strip()][-1:]
            print(f"{path.name}: a cell failed: {' '.join(last)}", file=sys.stderr)
            failed.append(path.name)
        # written either way: a failed notebook shows where it stopped
        target = out / f"{path.stem}.ipynb"
        nbformat.write(nb, target)
        print(f"{target}  ({time.perf_counter() - start:.0f} s)")
    if failed:
        print(f"{len(failed)} lesson(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
