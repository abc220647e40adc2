"""Benchmark flags: bad values are one clear line and exit 2; trials and resume bookkeeping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from agent.suites import benchmark
from agent.suites.reports import results_table_views as views
from agent.suites.results import AttemptResult
from agent.suites.results_table import Trial, build_rows
from agent.suites.runner import PlannedCase
from agent.suites.schema import load_suite

SUITE = """\
suite: Flags
defaults: {sandbox: fake, max_steps: 40}
cases:
  - id: one
    goal: "Type one"
  - id: two
    goal: "Type two"
"""


@pytest.mark.parametrize(("flags", "message"), [
    (["--budget-steps", "15,x"], "--budget-steps takes step counts"),
    (["--budget-steps", "0"], "positive step counts"),
    (["--cache", "sometimes"], "--cache must be one of read-write, read-only"),
    (["--models", ","], "--models needs at least one model name"),
])
def test_bad_benchmark_flags_exit_2_with_one_line(tmp_path: Path, flags: list[str],
                                                   message: str) -> None:
    suite = tmp_path / "flags.suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "agent", "test", str(suite), "--output",
                           str(tmp_path / "out"), *flags],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_trials_get_distinct_repeats_per_pair_and_the_budget_replaces_max_steps(
        tmp_path: Path) -> None:
    suite_file = tmp_path / "flags.suite.yaml"
    suite_file.write_text(SUITE, encoding="utf-8")
    planned = [PlannedCase(c, 1) for c in load_suite(suite_file).cases]
    first = benchmark.trials_for(planned, 0, 15, 3)
    second = benchmark.trials_for(planned, 1, 50, 3)
    assert [(p.case.id, p.repeat) for p in first] == [("one", 1), ("one", 2), ("one", 3),
                                                     ("two", 1), ("two", 2), ("two", 3)]
    assert {p.repeat for p in second} == {4, 5, 6}
    assert {p.case.max_steps for p in first} == {15}
    assert {p.case.max_steps for p in benchmark.trials_for(planned, 0, 0, 1)} == {40}
    repeated = [PlannedCase(c, r) for c in load_suite(suite_file).cases for r in (1, 2)]
    numbers = [(p.case.id, p.repeat) for p in benchmark.trials_for(repeated, 1, 0, 2)]
    assert len(set(numbers)) == len(numbers) == 8  # --repeat-each 2 × --trials 2, two tasks
    assert min(r for _, r in numbers) == 5  # after pair 0's four


def _attempt(case: str, repeat: int, status: str, attempt: int = 1) -> AttemptResult:
    return AttemptResult(run_id="r", suite="s", file="f", case=case, name=case,
                         attempt=attempt, repeat=repeat, status=status)


def test_resume_skips_finished_trials_and_reruns_infrastructure_errors() -> None:
    attempts = [_attempt("one", 1, "passed"), _attempt("one", 2, "error"),
                _attempt("two", 1, "failed"), _attempt("two", 2, "error"),
                _attempt("two", 2, "passed", attempt=2)]
    assert benchmark.finished_trials(attempts) == {("f::one", 1), ("f::two", 1),
                                                   ("f::two", 2)}


def test_the_table_views_show_the_same_row() -> None:
    rows = build_rows([Trial("m", 15, "t", "passed", claimed="done", cost_usd=0.5),
                       Trial("m", 15, "u", "failed", claimed="done", cost_usd=0.5)])
    md = views.markdown(rows)
    assert "| m | 15 | 2 | 50.0% [9.5%, 90.5%] (1/2) |" in md
    assert "50.0% (1/2)" in md  # the false-success column
    csv_text = views.csv_text(rows)
    assert csv_text.splitlines()[0].startswith("model,budget,tasks,trials,successes")
    page = views.into_html_report("<body><h1>deskhand test</h1><p>x</p>",
                                  views.html_table(rows))
    assert page.index("Planner benchmark") < page.index("<p>x</p>")
    console = Console(width=80, record=True, color_system=None)
    console.print(views.rich_table(rows))
    terminal = console.export_text()
    assert "m · 15" in terminal
    assert any(line.startswith("│ false success") and "50.0% (1/2)" in line
               for line in terminal.splitlines())
