"""An experiment's settings as a dataclass, and its command-line flags built from it.

Each experiment declares its settings once, with their defaults and help; `add_flags` gives
the parser a flag per field (`batch_size` -> `--batch-size`) and `from_args` reads them back
into the dataclass, so the command line and the Python API cannot drift apart. Field types
say how a value is read: int, float, str; `bool` is a switch; a tuple is a comma-separated
list (`--depths 8,20,56`); `Size` is CxHxW or HxW.

A `sized` field has two defaults: a small one, so the experiment finishes in minutes on a
laptop's CPU, and the paper-sized one that `--full` (the `full` field) picks; a value given
explicitly wins over both. `resolve` fills them in.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

from ..errors import UserInputError
from ..sizes import Size, parse_size


@dataclass(frozen=True)
class Flag:
    help: str = ""
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    positional: bool = False
    required: bool = False
    minimum: float | None = None  # a number below it is refused in one line
    sized: tuple[Any, Any] | None = None  # (small default, --full default); see `sized`


class _Unset:
    """A `sized` field not given: `resolve` puts in its small or full default."""

    def __repr__(self) -> str:
        return "unset"


UNSET: Any = _Unset()


def option(default: Any, help: str = "", **flag: Any) -> Any:
    """A settings field with its command-line help (see `Flag`)."""
    if isinstance(default, list | dict):
        raise TypeError("use a tuple for a list default")
    return dataclasses.field(default=default, metadata={"flag": Flag(help=help, **flag)})


def _show(value: Any) -> str:
    if value is None:
        return "all"
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def sized(small: Any, full: Any, help: str = "", **flag: Any) -> Any:
    """A settings field whose default is `small`, or `full` with --full (None: all, or what
    the source expects); a value given explicitly wins over both."""
    text = f"{help} (default: {_show(small)}; with --full: {_show(full)})".lstrip()
    return dataclasses.field(default=UNSET, metadata={
        "flag": Flag(help=text, sized=(small, full), **flag)})


def full_flag(help: str = "the paper-sized run: each setting above with a --full default "
              "takes it unless given") -> Any:
    """The `full` switch every experiment has."""
    return option(False, help)


def resolve(settings: Any) -> Any:
    """`settings` with every `sized` field not given set to its small default, or its full
    one where `settings.full` is set."""
    values = {}
    for f in dataclasses.fields(settings):
        pair = _flag(f).sized
        if pair is not None and getattr(settings, f.name) is UNSET:
            values[f.name] = pair[1] if getattr(settings, "full", False) else pair[0]
    return dataclasses.replace(settings, **values)


def _flag(f: dataclasses.Field) -> Flag:
    return f.metadata.get("flag", Flag())


def _kind(hint: Any) -> tuple[str, Any]:
    """('switch' | 'list' | 'size' | 'value', the element type)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1
    base = args[0] if optional else hint
    if base is bool:
        return "switch", bool
    if base is Size or (typing.get_origin(base) is tuple and typing.get_args(base)
                        == (int, int, int)):
        return "size", None
    if typing.get_origin(base) is tuple:
        return "list", typing.get_args(base)[0]
    return "value", base


def add_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """A flag (or positional argument) per field of the settings dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = _flag(f)
        kind, elem = _kind(hints[f.name])
        default = f.default
        shown = (",".join(map(str, default)) if isinstance(default, tuple) else default)
        help_text = meta.help
        if not (default is None or default is False or default == () or default is UNSET) \
                and not meta.required and kind != "switch":
            help_text = f"{help_text} (default: {shown})" if help_text else f"default: {shown}"
        if meta.positional:
            parser.add_argument(f.name, metavar=meta.metavar or f.name.upper(), help=help_text)
            continue
        name = "--" + f.name.replace("_", "-")
        if kind == "switch":
            parser.add_argument(name, dest=f.name, action="store_true", default=default,
                                help=help_text)
            continue
        typ = {"value": elem if elem in (int, float) else None, "list": None,
               "size": None}[kind]
        kw: dict[str, Any] = {"dest": f.name, "metavar": meta.metavar, "help": help_text,
                              "default": None if meta.required else default}
        if typ is not None:
            kw["type"] = typ
        if meta.choices:
            kw["choices"] = meta.choices
        if meta.required:
            kw["required"] = True
        parser.add_argument(name, **kw)


def _parse_list(text: Any, flag: str, elem: Any) -> tuple:
    if isinstance(text, tuple):
        return text
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise UserInputError(f"{flag} is empty; give a comma-separated list")
    try:
        return tuple(elem(t) for t in items)
    except ValueError:
        raise UserInputError(f"{flag} takes a comma-separated list of numbers, not {text!r}") \
            from None


def from_args(cls: type, args: argparse.Namespace) -> Any:
    """The settings dataclass `cls` filled from parsed arguments, lists and sizes read and
    numbers checked against their minimum (one-line errors)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name)
        kind, elem = _kind(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        if value is not None and value is not UNSET:
            if kind == "list":
                value = _parse_list(value, flag, elem)
            elif kind == "size" and isinstance(value, str):
                value = parse_size(value)
        minimum = _flag(f).minimum
        if minimum is not None and value is not None and value is not UNSET:
            low = [v for v in (value if isinstance(value, tuple) else (value,)) if v < minimum]
            if low:
                raise UserInputError(f"{flag} must be at least {minimum:g}, got {low[0]}")
        values[f.name] = value
    return cls(**values)


__all__ = ["Flag", "UNSET", "add_flags", "from_args", "full_flag", "option", "resolve", "sized"]
