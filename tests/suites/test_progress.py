"""The live display: one line per worker, redrawn in place on a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from agent.suites.progress import LiveProgress, case_line
from agent.suites.results import AttemptResult


def attempt(status: str, number: int = 1) -> AttemptResult:
    return AttemptResult(run_id="r", suite="Editor", file="e.suite.yaml", case="save",
                         name="save", attempt=number, repeat=1, status=status,
                         message="expect file: no beta", line=12, duration_s=1.5)


def test_one_line_per_worker_and_a_count() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100, color_system=None)
    progress = LiveProgress(console, workers=3, total=5, list_cases=False)
    progress.worker_busy(1, "Editor › save (attempt 1, engine default)")
    progress.worker_idle(3, "done")
    console.print(progress.render())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "worker 1: Editor › save (attempt 1, engine default)" in text
    assert "worker 2: starting" in text
    assert "worker 3: done" in text
    assert "0/5 cases done" in text


def test_a_finished_case_line_says_status_attempts_and_where_it_failed() -> None:
    line = case_line("flaky", [attempt("failed"), attempt("passed", 2)])
    assert "flaky" in line
    assert "Editor › save" in line
    assert "2 attempts, 3.0 s" in line
    assert "e.suite.yaml:12: expect file: no beta" in line
