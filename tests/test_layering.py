"""The package's layering: the command line sits on top, and nothing below it reaches up."""

from __future__ import annotations

import ast
from pathlib import Path

import convzoo

PACKAGE = Path(convzoo.__file__).parent
# The command line itself, and the `python -m convzoo` entry point that starts it.
ALLOWED = ("cli/", "__main__.py")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(path: Path) -> list[str]:
    """convzoo/train/loop.py -> ['convzoo', 'train', 'loop'] (a package: its __init__'s name)."""
    parts = ["convzoo", *path.relative_to(PACKAGE).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported_modules(code: str, package: list[str]) -> set[str]:
    """Every module `code` (a module of `package`) imports, relative imports made absolute, at
    any depth (inside a function too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)  # `from . import cli`
    return found


def _imports_of(path: Path) -> set[str]:
    dotted = _dotted(path)
    package = dotted if path.name == "__init__.py" else dotted[:-1]
    return imported_modules(path.read_text(encoding="utf-8"), package)


def test_the_import_reader_sees_relative_and_nested_imports() -> None:
    code = ("import os\nfrom ..errors import UserInputError\n"
            "def f():\n    from ..cli.predict import classify\n"
            "def g():\n    from .. import cli\n    import convzoo.cli.common\n")
    found = imported_modules(code, ["convzoo", "viz"])
    assert {"os", "convzoo.errors", "convzoo.cli.predict", "convzoo.cli",
            "convzoo.cli.common"} <= found
    # a package's own relative import stays inside it
    assert imported_modules("from .loop import fit", ["convzoo", "train"]) == \
        {"convzoo.train.loop", "convzoo.train.loop.fit"}


def test_nothing_below_the_cli_imports_it() -> None:
    offenders = []
    for path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(ALLOWED):
            continue
        bad = sorted(m for m in _imports_of(path)
                     if m == "convzoo.cli" or m.startswith("convzoo.cli."))
        if bad:
            offenders.append(f"{rel}: {', '.join(bad)}")
    assert not offenders, "modules below the command line import it:\n" + "\n".join(offenders)


def test_parse_size_is_defined_once() -> None:
    where = [path.relative_to(PACKAGE).as_posix() for path in _modules()
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
             and node.name == "parse_size"]
    assert where == ["sizes.py"]
