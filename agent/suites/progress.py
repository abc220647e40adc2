"""The runner's live display: one line per worker, and one line per finished case."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from agent.suites.results import AttemptResult
from agent.suites.runner import Progress

STATUS_STYLE = {"passed": "green", "failed": "red", "flaky": "yellow", "error": "magenta",
                "skipped": "dim", "blocked_by_policy": "red", "budget_exceeded": "red"}
STATUS_MARK = {"passed": "✓", "failed": "✗", "flaky": "~", "error": "!", "skipped": "-",
               "blocked_by_policy": "⊘", "budget_exceeded": "⌛"}


class LiveProgress(Progress):
    """Worker lines redrawn in place on a terminal; finished cases printed above them."""

    def __init__(self, console: Console, workers: int, total: int, *,
                 list_cases: bool = True) -> None:
        self.console = console
        self.total = total
        self.done = 0
        self.list_cases = list_cases
        self._lines = {index: "starting" for index in range(1, workers + 1)}
        self._lock = threading.Lock()
        self._live = Live(self.render(), console=console, refresh_per_second=4,
                          transient=True) if console.is_terminal else None

    def __enter__(self) -> LiveProgress:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.stop()

    def worker_busy(self, worker: int, text: str) -> None:
        self._set(worker, text)

    def worker_idle(self, worker: int, text: str) -> None:
        self._set(worker, f"[dim]{escape(text)}[/]", markup=True)

    def case_done(self, status: str, attempts: Sequence[AttemptResult]) -> None:
        with self._lock:
            self.done += 1
        if self.list_cases and attempts:
            self.console.print(case_line(status, attempts), highlight=False)
        self._refresh()

    def _set(self, worker: int, text: str, *, markup: bool = False) -> None:
        with self._lock:
            self._lines[worker] = text if markup else escape(text)
        self._refresh()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self.render())

    def render(self) -> Group:
        rows = [Text.from_markup(f"  worker {index}: {line}")
                for index, line in sorted(self._lines.items())]
        rows.append(Text(f"  {self.done}/{self.total} cases done", style="bold"))
        return Group(*rows)


def case_line(status: str, attempts: Sequence[AttemptResult]) -> str:
    """``✓ passed  Editor basics › save-edits  (2 attempts, 3.1 s)`` and the failure below."""
    last = attempts[-1]
    style = STATUS_STYLE.get(status, "white")
    tries = f"{len(attempts)} attempts, " if len(attempts) > 1 else ""
    seconds = sum(a.duration_s for a in attempts)
    line = (f"[{style}]{STATUS_MARK.get(status, '?')} {status:<17}[/] "
            f"{escape(last.suite)} › {escape(last.case)}  [dim]({tries}{seconds:.1f} s)[/]")
    failure = next((a for a in attempts if a.status != "passed"), None)
    if failure is not None and status != "passed":
        where = f"{failure.file}:{failure.line}: " if failure.line else ""
        line += f"\n    [dim]{escape(where + failure.message)}[/]"
    return line
