"""The `convzoo` command. Each subcommand lives in the module of its name, which has
`add_parser(sub)`; `COMMANDS` lists those modules in the order `convzoo --help` shows them."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from collections.abc import Sequence

from ..errors import ConvzooError

# Modules of subcommands, in the order `convzoo --help` lists them.
COMMANDS = ("list", "summary", "calc", "train", "eval", "predict", "finetune", "features",
            "experiment", "viz", "export", "compare", "report", "atlas", "pack", "data")


# OSErrors that mean the disk, not convzoo: full, over quota, read-only, not permitted.
_DISK_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS,
                errno.EACCES, errno.EPERM}


class _Parser(argparse.ArgumentParser):
    """Bad flags get one line and exit code 2, like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Version(argparse.Action):
    """`--version`, read from the installed metadata only when asked for (importlib.metadata
    cost about 20 ms of every start-up: `python -m cProfile -m convzoo --help`)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 help: str = "show the version and exit") -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from ..version import installed_version

        print(f"convzoo {installed_version()}")
        parser.exit()


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand argv names, when it names a known one and no help is asked for before
    it (the global options take no values: it is the first word that is not an option)."""
    for word in argv:
        if word in ("-h", "--help"):
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or of `only` (which is all that parsing a command
    line that names it needs; each subcommand module costs its imports)."""
    import importlib

    parser = _Parser(
        prog="convzoo",
        description="The classic convolutional networks: build, count, train, fine-tune.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if only is None else (only,):
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while starting up (imports take seconds): no traceback
        print("convzoo: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else [*argv]  # not list(): cli.list shadows it
    # `--help`, no command or a misspelt one: the full parser, which lists every command.
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except ConvzooError as e:
        message = " ".join(str(e).split())  # one line, whatever the message carried
        print(f"convzoo {args.command}: error: {message}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"convzoo {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:
        # a full or read-only disk met where no module turned it into a ConvzooError yet:
        # still one line (the written files are each replaced atomically, or left as they were)
        if e.errno not in _DISK_ERRNOS:
            raise
        from ..runs.disk import disk_message

        print(f"convzoo {args.command}: error: {disk_message(e, e.filename or 'a file')}",
              file=sys.stderr)
        return 1


def run() -> None:
    try:
        code = main()
    except KeyboardInterrupt:  # a second Ctrl-C while the first one is being reported
        code = 130
    sys.exit(code)
