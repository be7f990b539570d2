"""Progress when stdout is not a terminal: plain lines inside an epoch, at an interval."""

from __future__ import annotations

import io

from convzoo.runtime.progress import Progress, plain_line


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_epoch(p: Progress, clock: Clock, total: int = 100, every: int = 10,
              seconds_per_step: float = 1.0) -> None:
    p.start("epoch 1/3", total)
    for done in range(every, total + 1, every):
        clock.t += every * seconds_per_step
        p.update(done, loss=0.5, lr=0.1, img_s=1234.5)
    p.stop()


def test_plain_lines_every_few_seconds_not_only_at_the_end():
    out, clock = io.StringIO(), Clock()
    p = Progress(stream=io.StringIO(), out=out, every_s=30, clock=clock)
    assert p.plain and not p.rich
    run_epoch(p, clock)  # 100 steps of 1 s, updates every 10 steps
    lines = out.getvalue().splitlines()
    # due at 30, 60 and 90 s; the end (step 100) is left to the epoch's own line
    assert [line.split()[3] for line in lines] == ["30/100", "60/100", "90/100"]
    assert "loss 0.5000" in lines[0] and "lr 0.1" in lines[0] and "1234 img/s" in lines[0]
    assert "eta 1m10s" in lines[0]


def test_every_n_steps():
    out, clock = io.StringIO(), Clock()
    p = Progress(stream=io.StringIO(), out=out, every_steps=25, clock=clock)
    run_epoch(p, clock, seconds_per_step=0.001)
    assert [line.split()[3] for line in out.getvalue().splitlines()] == ["30/100", "60/100",
                                                                        "90/100"]


def test_a_short_epoch_prints_nothing_inside_it():
    out, clock = io.StringIO(), Clock()
    p = Progress(stream=io.StringIO(), out=out, every_s=10, clock=clock)
    run_epoch(p, clock, seconds_per_step=0.05)  # 5 s in all
    assert out.getvalue() == ""


def test_a_bar_on_the_terminal_and_lines_in_the_redirected_stdout():
    out, clock = io.StringIO(), Clock()
    p = Progress(stream=Tty(), out=out, every_s=30, clock=clock)
    assert p.rich and p.plain  # `convzoo train ... > log`: bar on stderr, lines in the log
    run_epoch(p, clock)
    assert len(out.getvalue().splitlines()) == 3
    both = Progress(stream=Tty(), out=Tty(), clock=clock)
    assert both.rich and not both.plain  # a terminal: the bar alone


def test_disabled_and_quiet():
    out, clock = io.StringIO(), Clock()
    p = Progress(enabled=False, stream=io.StringIO(), out=out, every_s=1, clock=clock)
    run_epoch(p, clock)
    p.line("epoch 1/3 ...")
    assert out.getvalue() == ""


def test_plain_line_format():
    line = plain_line("epoch 2/10", 300, 400, loss=0.41234, lr=0.05, img_s=1500.0,
                      elapsed=3600.0)
    assert line == ("epoch 2/10  step 300/400 (75%)  loss 0.4123  lr 0.05  1500 img/s  "
                    "1h00m, eta 20m00s")
