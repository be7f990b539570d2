"""The package's layering: the command line sits on top, and nothing below it reaches up."""

from __future__ import annotations

import ast
from pathlib import Path

import convzoo

PACKAGE = Path(convzoo.__file__).parent
# The command line itself, the `python -m convzoo` entry point that starts it, and the lessons'
# helper, which runs commands as a student types them.
ALLOWED = ("cli/", "__main__.py", "lesson.py")


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


def _module_graph() -> dict[str, set[str]]:
    """Module -> the convzoo modules it imports (at any depth). The package root is left out
    (`from .. import __version__` reads a constant, it does not make a layer), and
    `from . import sub` counts as importing `sub`, not the package it sits in."""
    names = {".".join(_dotted(p)): p for p in _modules()}
    graph: dict[str, set[str]] = {}
    for mod, path in names.items():
        dotted = _dotted(path)
        package = dotted if path.name == "__init__.py" else dotted[:-1]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in names]
                found.update(subs)
                if node.module is not None or len(subs) < len(node.names):
                    found.add(target)
        graph[mod] = {m for m in found if m in names and m not in ("convzoo", mod)}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _registry_circle(comp: list[str]) -> bool:
    """The one circle by design: the registry loads the model families, which register
    themselves with it (as timm's does); the layers and the package __init__s they pass
    through come along."""
    allowed = ("convzoo.registry", "convzoo.models", "convzoo.layers", "convzoo.weights",
               "convzoo.analysis.profile", "convzoo.analysis")
    return "convzoo.registry" in comp and all(m.startswith(allowed) for m in comp)


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_besides_the_registrys() -> None:
    bad = [c for c in _cycles(_module_graph()) if not _registry_circle(c)]
    assert not bad, "modules that import each other in a circle:\n" + \
        "\n".join(" <-> ".join(c) for c in bad)


# The running accuracy of the optimiser's own steps is a training statistic, not a score.
SCORES_ALLOWED = ("evaluation/", "train/epoch.py")


def _compares_a_prediction(node: ast.AST) -> bool:
    """`x.argmax(...) == y` or `(x.topk(...).indices == y[:, None])`: a prediction checked
    against labels, i.e. an accuracy computed."""
    if not isinstance(node, ast.Compare):
        return False
    for side in (node.left, *node.comparators):
        for sub in ast.walk(side):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and \
                    sub.func.attr in ("argmax", "topk"):
                return True
    return False


def test_nothing_outside_the_scoring_module_scores_a_model() -> None:
    offenders = []
    for path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(SCORES_ALLOWED):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if _compares_a_prediction(node):
                offenders.append(f"{rel}:{node.lineno}: an accuracy computed by hand")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
                    "EvalResult", "Tally"):
                offenders.append(f"{rel}:{node.lineno}: builds a {node.func.id}")
    assert not offenders, "score through convzoo.evaluation.score:\n" + "\n".join(offenders)


def test_the_accuracy_check_sees_both_forms() -> None:
    for code in ("ok = (p.argmax(1) == y).sum()", "hit = (p.topk(5).indices == y[:, None])"):
        assert any(_compares_a_prediction(n) for n in ast.walk(ast.parse(code)))
    assert not any(_compares_a_prediction(n) for n in ast.walk(ast.parse("k = p.argmax(1)")))
