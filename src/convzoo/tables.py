"""One small table type, rendered for people (rich) or machines (json, csv, markdown)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("table", "json", "csv", "markdown")


def cell(value: Any) -> str:
    """A cell as a person reads it: whole numbers with thousands separators."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


@dataclass
class Table:
    """Cells hold plain values (ints, floats, strings): json and csv write them as they are,
    so a machine reads 1234567, and the table and markdown renderings write 1,234,567."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)
    totals: list[Any] | None = None
    align_right: set[int] = field(default_factory=set)
    compact: bool = False  # the terminal rendering without vertical rules, for wide tables

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"title": self.title,
                             "rows": [dict(zip(self.columns, r)) for r in self.rows]}
        if self.totals is not None:
            d["totals"] = dict(zip(self.columns, self.totals))
        d["notes"] = self.notes
        return d

    def render(self, fmt: str = "table") -> str:
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=2, default=str)
        if fmt == "csv":
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(self.columns)
            w.writerows(self.rows)
            if self.totals is not None:
                w.writerow(self.totals)
            return buf.getvalue()
        if fmt == "markdown":
            lines = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |",
                     "|" + "|".join("---:" if i in self.align_right else "---"
                                    for i in range(len(self.columns))) + "|"]
            body = self.rows + ([self.totals] if self.totals is not None else [])
            lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in body]
            lines += [""] + [f"- {n}" for n in self.notes] if self.notes else []
            return "\n".join(lines)
        return _render_rich(self)


def _render_rich(t: Table) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable

    rt = RichTable(title=t.title, show_footer=t.totals is not None, title_justify="left",
                   **({"box": box.SIMPLE_HEAD, "show_edge": False, "padding": (0, 0)}
                      if t.compact else {}))
    for i, c in enumerate(t.columns):
        footer = "" if t.totals is None else cell(t.totals[i])
        rt.add_column(c, justify="right" if i in t.align_right else "left", footer=footer)
    for r in t.rows:
        rt.add_row(*(cell(c) for c in r))
    console = Console(file=io.StringIO(), width=160, force_terminal=False, color_system=None)
    console.print(rt)
    for n in t.notes:
        console.print(f"  {n}", highlight=False, soft_wrap=True)
    return console.file.getvalue().rstrip("\n")


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23M'."""
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n:g}{unit}"
