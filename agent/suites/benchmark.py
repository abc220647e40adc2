"""The planner benchmark: a task set run per model, per step budget, k trials each.

``deskhand test examples/tasks --planner anthropic --models a,b --trials k
--budget-steps 15,50`` runs every (model, budget) pair in turn over the same
workers; each trial is one attempt of one task in a fresh sandbox.  Trials get
distinct repeat numbers (pair index × k + trial), so the suite reports keep
them apart and ``--resume`` can tell which trials of an interrupted benchmark
already finished: it keeps ``results.jsonl`` and runs only the trials it
lacks (an infrastructure error is run again).  Run ``--resume`` with the same
flags as the interrupted run.

At the end the results table (:mod:`agent.suites.results_table`) is shown in
the terminal and written as ``results.md``, ``results.csv`` and into
``report.html``.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from agent.settings import Settings
from agent.suites.plan_cache import CACHE_MODES, DEFAULT_CACHE_DIR
from agent.suites.reports import results_table_views as views
from agent.suites.results import RESULTS_FILE, AttemptResult, ResultsFile, read_results
from agent.suites.results_table import Trial, build_rows
from agent.suites.runner import PlannedCase

Report = Callable[[Sequence[AttemptResult], Path, frozenset[str], bool], int]


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchmarkOptions:
    """The benchmark's flags: which models, budgets, trials; resume; the plan cache."""

    models: tuple[str | None, ...] = (None,)
    budgets: tuple[int, ...] = (0,)  # 0: each task keeps its own max_steps
    trials: int = 1
    resume: bool = False
    cache: str = "off"
    cache_dir: Path = DEFAULT_CACHE_DIR

    @property
    def active(self) -> bool:
        """Whether the run needs the benchmark's path rather than a plain suite run."""
        return (self.models != (None,) or self.budgets != (0,) or self.trials > 1
                or self.resume or self.cache != "off")

    def pairs(self) -> list[tuple[str | None, int]]:
        return [(model, budget) for model in self.models for budget in self.budgets]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerFlags:
    """The suite runner's flags the benchmark passes through unchanged."""

    workers: int
    retries: int | None
    max_failures: int | None
    approval_timeout: float
    engines: tuple[str, ...]
    sandbox: str | None
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)  # DOCKER_* for engines


def parse_models(text: str | None) -> tuple[str | None, ...]:
    if text is None:
        return (None,)
    models = tuple(m.strip() for m in text.split(",") if m.strip())
    if not models:
        raise ValueError("--models needs at least one model name, e.g. --models a,b")
    return models


def parse_budgets(text: str | None) -> tuple[int, ...]:
    if text is None:
        return (0,)
    try:
        budgets = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--budget-steps takes step counts such as 15,50, not {text!r}") \
            from None
    if not budgets or any(b < 1 for b in budgets):
        raise ValueError("--budget-steps takes positive step counts such as 15,50")
    return budgets


def check_cache_mode(mode: str) -> str:
    if mode not in CACHE_MODES:
        raise ValueError(f"--cache must be one of {', '.join(CACHE_MODES)}, not {mode!r}")
    return mode


def trials_for(planned: Sequence[PlannedCase], pair_index: int, budget: int,
               trials: int) -> list[PlannedCase]:
    """Each task ``trials`` times, with the budget as its step limit and distinct repeats.

    With ``--repeat-each R`` as well, every repeat gets its own ``trials``.
    """
    per_pair = trials * max((item.repeat for item in planned), default=1)
    out: list[PlannedCase] = []
    for item in planned:
        case = dataclasses.replace(item.case, max_steps=budget) if budget else item.case
        first = pair_index * per_pair + (item.repeat - 1) * trials
        out.extend(PlannedCase(case, first + t) for t in range(1, trials + 1))
    return out


def finished_trials(attempts: Sequence[AttemptResult]) -> set[tuple[str, int]]:
    """(case key, repeat) of every trial whose last attempt was not an infrastructure error."""
    last: dict[tuple[str, int], AttemptResult] = {}
    for attempt in attempts:
        last[(attempt.key, attempt.repeat)] = attempt
    return {key for key, attempt in last.items() if attempt.status != "error"}


def trial_of(attempt: AttemptResult) -> Trial:
    return Trial(model=attempt.model or "(default)", budget=attempt.budget_steps,
                 task=attempt.key, status=attempt.status, claimed=attempt.claimed,
                 steps=attempt.steps, wall_s=attempt.duration_s,
                 model_s=attempt.model_time_s, tokens_in=attempt.tokens_in,
                 tokens_out=attempt.tokens_out, cost_usd=attempt.cost_usd,
                 approvals_asked=attempt.approvals_asked,
                 approvals_denied=attempt.approvals_denied, cache_hits=attempt.cache_hits)


def last_attempts(attempts: Sequence[AttemptResult]) -> list[AttemptResult]:
    """One attempt per trial: the last one (retries, when asked for, end in it)."""
    last: dict[tuple[str, int], AttemptResult] = {}
    for attempt in attempts:
        last[(attempt.key, attempt.repeat)] = attempt
    return list(last.values())


@dataclass(frozen=True, slots=True)
class BenchmarkRun:
    """How a benchmark ended: the reports' exit code, and whether Ctrl-C cut it short."""

    code: int
    interrupted: bool


def pending_pairs(planned: Sequence[PlannedCase], bench: BenchmarkOptions,
                  done: set[tuple[str, int]]) -> list[tuple[str | None, int,
                                                             list[PlannedCase]]]:
    """Per (model, budget) pair, its trials not already ``done`` (a resumed run)."""
    return [(model, budget, [p for p in trials_for(planned, i, budget, bench.trials)
                             if (p.case.key, p.repeat) not in done])
            for i, (model, budget) in enumerate(bench.pairs())]


def run_benchmark(planned: Sequence[PlannedCase], settings: Settings,
                  bench: BenchmarkOptions, flags: RunnerFlags, *, oracle: bool,
                  reporters: frozenset[str], output: Path, out: Console,
                  report: Report) -> BenchmarkRun:
    """Run every (model, budget) pair's trials; then the reports and the results table."""
    results_path = output / RESULTS_FILE
    earlier = read_results(results_path) if bench.resume else []
    done = finished_trials(earlier)
    work = pending_pairs(planned, bench, done)
    total = sum(len(items) for _, _, items in work)
    out.print(f"deskhand test (benchmark): {len(bench.pairs())} model/budget pair(s) × "
              f"{len(planned)} task(s) × {bench.trials} trial(s); {total} to run"
              + (f" ({len(done)} already in {results_path})" if done else ""))
    interrupted = threading.Event()
    attempts = _run_pairs(work, settings, bench, flags, oracle=oracle, total=total,
                          results=ResultsFile(results_path, keep_existing=bench.resume),
                          reporters=reporters, output=output, out=out,
                          interrupted=interrupted)
    everything = [*earlier, *attempts]
    code = report(everything, output, reporters, False)
    write_results_table(everything, output, out, html="html" in reporters)
    return BenchmarkRun(code, interrupted.is_set())


def _run_pairs(work: Sequence[tuple[str | None, int, list[PlannedCase]]], settings: Settings,
               bench: BenchmarkOptions, flags: RunnerFlags, *, oracle: bool, total: int,
               results: ResultsFile, reporters: frozenset[str], output: Path, out: Console,
               interrupted: threading.Event) -> list[AttemptResult]:
    """The pairs one after the other over the same workers; Ctrl-C stops them all."""
    from agent.suites import attempt, progress, runner
    from audit.log import AuditLog

    pool = runner.engines_for(flags.engines, flags.environment)
    perception = attempt.SharedPerception()
    count = max(1, min(flags.workers, total))
    attempts: list[AttemptResult] = []
    with AuditLog.open(output / "audit.db", redact=settings.secrets()) as log, \
            progress.LiveProgress(out, count, total, list_cases="list" in reporters) as live:
        envs = [attempt.WorkerEnv(index=i, engine=pool[(i - 1) % len(pool)], log=log,
                                  perception=perception) for i in range(1, count + 1)]
        for model, budget, items in work:
            if interrupted.is_set():
                break
            if not items:
                continue
            options = attempt.RunOptions(
                settings=settings.with_overrides(model=model) if model else settings,
                run_id=uuid.uuid4().hex, approval_timeout_s=flags.approval_timeout,
                oracle=oracle, sandbox=flags.sandbox, cache=bench.cache,
                cache_dir=bench.cache_dir, budget_steps=budget, interrupted=interrupted)
            attempts += runner.SuiteRunner(items, options=options, envs=envs, results=results,
                                           retries=flags.retries,
                                           max_failures=flags.max_failures,
                                           progress=live).run()
    return attempts


def write_results_table(attempts: Sequence[AttemptResult], output: Path, out: Console, *,
                        html: bool) -> None:
    rows = build_rows(trial_of(a) for a in last_attempts(attempts))
    out.print(views.rich_table(rows))
    (output / "results.md").write_text(views.markdown(rows), encoding="utf-8")
    (output / "results.csv").write_text(views.csv_text(rows), encoding="utf-8")
    report = output / "report.html"
    if html and report.is_file():
        page = report.read_text(encoding="utf-8")
        report.write_text(views.into_html_report(page, views.html_table(rows)),
                          encoding="utf-8")
    out.print(f"  {output / 'results.md'}\n  {output / 'results.csv'}")
