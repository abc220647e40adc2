"""Stopping deskhand from outside: Ctrl-C, SIGTERM, SIGHUP and a closed terminal.

All of them mean one thing — stop now, cleanly — and all reach the main
thread as :class:`Interrupted`, a :class:`KeyboardInterrupt`, so every
``except KeyboardInterrupt`` and every ``with`` block on the way out cleans
up exactly as it does for Ctrl-C: the step in flight is closed as
interrupted, the session ends ``interrupted`` with the cause named, the
sandbox is removed.

Only the first signal interrupts.  Later ones arrive while that clean-up
runs; they are noted and ignored, so that a second Ctrl-C cannot leave a
container or a pending step behind.  Only a fourth, for a clean-up that
hangs, ends the process at once (the next run reaps what it left).

Every cause exits with :data:`EXIT_INTERRUPTED` (130, the shell's code for
Ctrl-C), SIGTERM and SIGHUP included: a caller tells "deskhand was
stopped" from one code, and the session's reason names the signal.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_INTERRUPTED = 130

STOP_SIGNALS: dict[signal.Signals, str] = {
    signal.SIGINT: "Ctrl-C (SIGINT)",
    signal.SIGTERM: "SIGTERM",
    signal.SIGHUP: "SIGHUP (the terminal closed)",
}
CTRL_C = STOP_SIGNALS[signal.SIGINT]
# Signals ignored during clean-up before one more ends the process outright.
IGNORED_BEFORE_FORCE = 2
TERMINAL_CLOSED = "the terminal closed (end of input)"


class Interrupted(KeyboardInterrupt):
    """deskhand was asked to stop; ``cause`` says by what."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def cause_of(exc: BaseException) -> str:
    """What stopped deskhand: a plain KeyboardInterrupt is Ctrl-C."""
    return exc.cause if isinstance(exc, Interrupted) else CTRL_C


def interrupted_reason(exc: BaseException) -> str:
    """The reason a session records when ``exc`` stopped it."""
    return f"interrupted by {cause_of(exc)}"


def _say_on_stderr(text: str) -> None:
    sys.stderr.write(f"\ndeskhand: {text}\n")
    sys.stderr.flush()


class StopSignals:
    """Handlers that turn the first stop signal into :class:`Interrupted`."""

    def __init__(self, notice: Callable[[str], None] = _say_on_stderr) -> None:
        self.notice = notice
        self.stopping: str | None = None
        self.ignored = 0
        self._previous: dict[signal.Signals, object] = {}

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        self._previous.clear()

    def stop(self, cause: str) -> None:
        """Stop for ``cause`` (raises), unless a stop is already under way."""
        if self.stopping is not None:
            self.notice(f"{cause}: already stopping ({self.stopping}), cleaning up")
            return
        self.stopping = cause
        raise Interrupted(cause)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping is not None:
            self.ignored += 1
            if self.ignored > IGNORED_BEFORE_FORCE:
                self.notice("forced to stop before the clean-up finished")
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
                return
        self.stop(STOP_SIGNALS.get(signal.Signals(signum), f"signal {signum}"))


_active: StopSignals | None = None


@contextmanager
def stop_on_signals(notice: Callable[[str], None] = _say_on_stderr) -> Iterator[StopSignals]:
    """Install the stop handlers for the block (main thread only)."""
    global _active
    handlers = StopSignals(notice)
    handlers.install()
    outer, _active = _active, handlers
    try:
        yield handlers
    finally:
        handlers.restore()
        _active = outer


def stop_now(cause: str) -> None:
    """Stop as a signal would, for a cause found in code (a closed terminal); raises."""
    if _active is None:
        raise Interrupted(cause)
    _active.stop(cause)
    raise Interrupted(cause)  # a stop already under way: unwind all the same


def already_stopping() -> bool:
    """True once a stop signal has been received under :func:`stop_on_signals`."""
    return _active is not None and _active.stopping is not None
