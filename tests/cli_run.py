"""Run `convzoo ...` in-process, as the CLI tests do: (exit code, stdout, stderr)."""

from __future__ import annotations

import pytest

from convzoo.cli import main


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse's own errors and --help
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err
