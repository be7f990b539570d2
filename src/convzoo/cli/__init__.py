"""The `convzoo` command. Each subcommand lives in the module of its name, which has
`add_parser(sub)`; `COMMANDS` lists those modules in the order `convzoo --help` shows them."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ..errors import ConvzooError

# Modules of subcommands, in the order `convzoo --help` lists them.
COMMANDS = ("list", "summary", "calc", "train", "eval", "predict", "finetune", "features",
            "experiment", "viz", "export", "compare", "report")


class _Parser(argparse.ArgumentParser):
    """Bad flags get one line and exit code 2, like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(
        prog="convzoo",
        description="The classic convolutional networks: build, count, train, fine-tune.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    from ..version import installed_version

    parser.add_argument("--version", action="version", version=f"convzoo {installed_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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


def run() -> None:
    sys.exit(main())
