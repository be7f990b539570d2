"""No module under src/ unpickles data or runs code from it: an AST scan for `pickle.load(s)`
(and the other pickle-based loaders), `torch.load` without `weights_only=True`,
`numpy.load(allow_pickle=True)` and `eval`/`exec`."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve",
                  "marshal"}
PICKLE_FUNCS = {"load", "loads", "open"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _kw_is(call: ast.Call, name: str, value: object) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value
               for k in call.keywords)


def unsafe_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for every unsafe call in a module's tree."""
    aliases: dict[str, str] = {}  # local name -> module.function it was imported as
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name] = a.name
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        head, _, rest = name.partition(".")
        full = f"{aliases[head]}.{rest}".rstrip(".") if head in aliases else name
        mod, _, func = full.rpartition(".")
        if mod in PICKLE_MODULES and func in PICKLE_FUNCS:
            found.append((node.lineno, full))
        elif full == "torch.load" and not _kw_is(node, "weights_only", True):
            found.append((node.lineno, "torch.load without weights_only=True"))
        elif full in ("numpy.load", "np.load") and _kw_is(node, "allow_pickle", True):
            found.append((node.lineno, "numpy.load(allow_pickle=True)"))
        elif isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec", "compile",
                                                                  "__import__"):
            found.append((node.lineno, node.func.id))
        elif full in ("builtins.eval", "builtins.exec"):
            found.append((node.lineno, full))
    return found


def test_the_scan_finds_what_it_looks_for():
    bad = """
import pickle, torch
import numpy as np
from pickle import loads as pl
import pickle as pk
pickle.load(f); pl(b); pk.loads(b)
torch.load(p); torch.load(p, weights_only=False)
np.load(p, allow_pickle=True)
eval("1"); exec("x = 1")
"""
    good = """
import torch, pickle
torch.load(p, map_location="cpu", weights_only=True)
model.eval(); net.eval()
class U(pickle.Unpickler):
    pass
"""
    assert len(unsafe_calls(ast.parse(bad))) == 8
    assert unsafe_calls(ast.parse(good)) == []


def test_no_module_loads_data_unsafely():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    problems = [f"{f.relative_to(SRC)}:{line}: {what}"
                for f in files for line, what in unsafe_calls(ast.parse(f.read_text(), str(f)))]
    assert problems == []
