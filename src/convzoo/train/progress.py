"""A progress bar per epoch (loss, learning rate, images/s, ETA) on a terminal; plain lines
elsewhere, so logs and CI output stay readable."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """`start(title, total)`, `update(done, loss=, lr=, img_s=)`, `stop()`; `line(text)` prints."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None,
                 force_plain: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.rich = enabled and not force_plain and self.stream.isatty()
        self._bar = None
        self._task = None
        self._t0 = 0.0
        self._total = 0
        self._title = ""

    def start(self, title: str, total: int) -> None:
        self._t0, self._total, self._title = time.perf_counter(), total, title
        if not self.rich:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), console=Console(file=self.stream), transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(title, total=total, stats="")

    def update(self, done: int, *, loss: float, lr: float, img_s: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done,
                             stats=f"loss {loss:.4f}  lr {lr:.3g}  {img_s:,.0f} img/s")

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def line(self, text: str) -> None:
        if self.enabled:
            print(text, file=sys.stdout, flush=True)
