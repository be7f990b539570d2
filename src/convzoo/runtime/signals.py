"""SIGTERM and SIGINT during training: the first asks the loop to stop, the second exits.

A scheduler's SIGTERM or a Ctrl-C must not cost the steps since the last checkpoint, and must
not land inside a half-done optimiser step. So the handler only records the signal; the loop
looks at it after every step, writes `last` and ends the run with `TrainingInterrupted`,
which the command line turns into exit code 128 + the signal's number (130 for Ctrl-C, 143
for SIGTERM), the shell's convention for a process a signal ended.

A second signal while the loop is still finishing means "now" (under torchrun's agent, only
one of another kind: a cluster's SIGTERM may reach a worker both directly and through the
agent, which itself sends SIGKILL if the save takes too long): the process exits at once
(os._exit, code 128 + signal). Whatever was being written then is safe: a checkpoint goes to
a temporary directory and is renamed into place (see `checkpoint`), so the previous `last`
stays valid and the next run removes the partial copy and takes over the lock. Loader
workers ignore both signals (`data.batches.ignore_stop_signals`): a terminal's Ctrl-C, and a
cluster's SIGTERM on preemption, reach the whole process group; workers that died of it would
take the batch being read with them, and the run would end without its save. The main process
stops them when it is done.

Handlers are installed only in the main thread (Python's rule) and put back on exit, so a
library caller's own handlers return after `fit`.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType

from ..errors import ConvzooError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class TrainingInterrupted(ConvzooError):
    """The run stopped on a signal after saving `last`; exit code 128 + the signal."""

    def __init__(self, message: str, signum: int = signal.SIGINT, step: int | None = None) -> None:
        super().__init__(message)
        self.signum, self.step = signum, step
        self.exit_code = 128 + int(signum)


class StopOnSignal:
    """`with StopOnSignal() as stop: ... if stop.requested: ...`; see the module docstring."""

    def __init__(self, signals: tuple[int, ...] = SIGNALS) -> None:
        self.signals = signals
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def request(self, signum: int = signal.SIGINT) -> None:
        """Ask for a stop as a signal would (for callers and tests)."""
        if self.signum is None:
            self.signum = int(signum)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            if signum == self.signum and "TORCHELASTIC_RUN_ID" in os.environ:
                # under torchrun a cluster's SIGTERM can come twice: from the job's own kill
                # and forwarded by the agent, which sends SIGKILL itself if the save is slow
                return
            _say(f"convzoo: second {signal_name(signum)}: exiting now (the last checkpoint on "
                 "disk stays valid)\n")
            from ..runs.lock import _release_all

            _release_all()
            os._exit(128 + signum)
        self.signum = signum
        _say(f"convzoo: {signal_name(signum)} received: saving after this step "
             "(send it again to exit at once)\n")

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                try:
                    self._previous[s] = signal.signal(s, self._handle)
                except (ValueError, OSError):  # not settable here (an embedded interpreter)
                    pass
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for s, old in self._previous.items():
            try:
                signal.signal(s, old)  # type: ignore[arg-type]
            except (ValueError, OSError, TypeError):
                pass
        self._previous.clear()


def _say(text: str) -> None:
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 speaks for all
        return
    try:
        os.write(2, text.encode())  # no buffered I/O inside a signal handler
    except OSError:
        pass

