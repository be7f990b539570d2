"""convzoo.data's modules import each other without a circle: the types, the readers, the
batching and the folder batching each sit below the modules that use them."""

import ast
from pathlib import Path

import convzoo.data

DATA = Path(convzoo.data.__file__).parent


def _imports(path: Path) -> set[str]:
    """The sibling modules a module imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(a.name for a in node.names)
    return found


def test_data_modules_form_no_import_circle() -> None:
    graph = {p.stem: _imports(p) & {q.stem for q in DATA.glob("*.py")}
             for p in DATA.glob("*.py") if p.stem != "__init__"}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        if state.get(m) == 2:
            return
        assert state.get(m) != 1, "import circle: " + " -> ".join(stack + [m])
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            visit(n, stack + [m])
        state[m] = 2

    for m in sorted(graph):
        visit(m, [])
    # the types import no reader and no batching
    assert graph["dataset"] <= {"seeding"}
    assert "loader" not in graph["folder_batches"] and "catalog" not in graph["readers"]
