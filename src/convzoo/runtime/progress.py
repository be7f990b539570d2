"""Progress within an epoch: a bar (loss, learning rate, images/s, ETA) on a terminal, plain
lines elsewhere, so a pipe or a batch scheduler's log shows a long epoch advancing.

Where the output goes:
- the bar is drawn on `stream` (stderr) when that is a terminal;
- plain lines go to stdout, beside the per-epoch lines, unless the bar is already drawn on
  the same terminal: so `convzoo train ... > log` shows the bar and writes lines to the log,
  and `... 2>&1 | tee log` writes lines only.
A plain line is printed at most every `every_s` seconds, or every `every_steps` updates when
training steps when that is set (the loop reports every `log_every` steps, so the interval
is rounded up to those); the first comes one interval into the epoch, so epochs shorter than the
interval print only their end-of-epoch line.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

EVERY_S = 10.0  # seconds between plain lines: a long epoch shows six lines a minute


def plain_line(title: str, done: int, total: int, *, loss: float, lr: float, img_s: float,
               elapsed: float) -> str:
    """'epoch 2/10  step 300/469 (64%)  loss 0.4123  lr 0.05  1234 img/s  12s, eta 7s'."""
    pct = 100 * done / max(total, 1)
    eta = elapsed / done * (total - done) if done else 0.0
    return (f"{title}  step {done}/{total} ({pct:.0f}%)  loss {loss:.4f}  lr {lr:.3g}  "
            f"{img_s:.0f} img/s  {_duration(elapsed)}, eta {_duration(eta)}")


def _duration(s: float) -> str:
    s = max(0.0, s)
    if s < 60:
        return f"{s:.0f}s"
    m, s = divmod(round(s), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


class Progress:
    """`start(title, total)`, `update(done, loss=, lr=, img_s=)`, `stop()`; `line(text)` prints."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None,
                 force_plain: bool = False, *, out: TextIO | None = None,
                 every_s: float = EVERY_S, every_steps: int | None = None,
                 clock=time.perf_counter) -> None:
        self.stream = stream or sys.stderr
        self.out = out  # None: sys.stdout at the time of printing (tests capture it)
        self.enabled = enabled
        self.rich = enabled and not force_plain and _isatty(self.stream)
        self.every_s, self.every_steps = every_s, every_steps
        self._clock = clock
        self._bar = None
        self._task = None
        self._t0 = self._last = 0.0
        self._last_done = 0
        self._total = 0
        self._title = ""

    @property
    def plain(self) -> bool:
        """Whether plain lines are printed: unless the bar is drawn on the same terminal."""
        if not self.enabled:
            return False
        return not (self.rich and _isatty(self._out()))

    def _out(self) -> TextIO:
        return self.out or sys.stdout

    def start(self, title: str, total: int) -> None:
        self._t0 = self._last = self._clock()
        self._total, self._title, self._last_done = total, title, 0
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
        if not self.plain or done >= self._total:  # the epoch's own line follows its end
            return
        now = self._clock()
        due = (done - self._last_done >= self.every_steps if self.every_steps
               else now - self._last >= self.every_s)
        if due:
            self._last, self._last_done = now, done
            print(plain_line(self._title, done, self._total, loss=loss, lr=lr, img_s=img_s,
                             elapsed=now - self._t0), file=self._out(), flush=True)

    def advance(self, done: int, stats: str = "") -> None:
        """Progress of work that is not a training step (a scan, an evaluation): `stats` is
        free text shown beside the bar, or in a plain line every few seconds."""
        if self._bar is not None:
            self._bar.update(self._task, completed=done, stats=stats)
        if not self.plain:
            return
        now = self._clock()
        if done >= self._total or now - self._last >= self.every_s:
            self._last, self._last_done = now, done
            print(f"{self._title}: {done}/{self._total} {stats}".rstrip(), file=self._out(),
                  flush=True)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def line(self, text: str) -> None:
        if self.enabled:
            print(text, file=self._out(), flush=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream is not a terminal
        return False
