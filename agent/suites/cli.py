"""``deskhand test PATH...`` and ``deskhand test merge DIR...``."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from agent.errors import ConfigError, DeskhandError

if TYPE_CHECKING:
    from agent.settings import Settings
    from agent.suites.attempt import WorkerEnv
    from agent.suites.benchmark import BenchmarkOptions
    from agent.suites.results import AttemptResult
    from agent.suites.runner import PlannedCase
    from agent.suites.schema import Suite

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130
REPORTERS = frozenset({"list", "junit", "html", "json"})
DEFAULT_REPORTERS = "list,junit,json"
DEFAULT_OUTPUT = Path("test-results")
# What a new run clears from its output folder (the rest is the user's).
OUTPUTS = ("results.jsonl", "junit.xml", "report.html", "report.json", "audit.db",
           "audit.db.head", "audit.db-wal", "audit.db-shm", "sessions", "frames",
           "audit.db.locks")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

HELP = """Run scripted UI test suites (*.suite.yaml files, or folders of them).

Each case attempt runs in a fresh sandbox, as one audit session (tagged with
the suite, case and attempt), under the policy in force.  Statuses: passed,
failed, flaky (failed, then passed on a retry), error (infrastructure),
skipped, blocked_by_policy, budget_exceeded.

Outputs in --output: results.jsonl (one line per attempt), junit.xml,
report.html, audit.db (the attempts' sessions).

Merge the outputs of shards:  deskhand test merge DIR... --output merged

Benchmark a planner on a task set (goal cases):  deskhand test examples/tasks
--planner anthropic --models a,b --trials k [--budget-steps 15,50] [--resume];
the results table goes to the terminal, results.md, results.csv and report.html.
--cache read-write|read-only|write-only replays cached plans on unchanged screens.

Exit codes: 0 every case passed, 1 a case failed, 2 bad input (a suite file,
a flag), 3 infrastructure (a sandbox or engine failed), 130 interrupted (Ctrl-C:
running attempts stop at their next step and remove their sandboxes).
"""

SUITE_PARSERS = ("ocr", "a11y", "auto")


def run_suites(
    paths: Annotated[list[Path], typer.Argument(
        help="Suite files or folders (searched for *.suite.yaml); with `merge`, the shard "
             "output folders to merge.", show_default=False)],
    workers: Annotated[int, typer.Option(min=1, max=64, help="Cases run in parallel, each "
                                         "in its own sandbox.")] = 1,
    shard: Annotated[str | None, typer.Option(help="Run only share i of n (e.g. 2/4): a "
                                              "stable split by suite and case id.")] = None,
    retries: Annotated[int | None, typer.Option(min=0, max=20, help="Retry a failing case up "
                                                "to N times (default: the suite's "
                                                "defaults.retries).")
                       ] = None,
    repeat_each: Annotated[int, typer.Option(min=1, max=1000,
                                             help="Run every case N times.")] = 1,
    grep: Annotated[str | None, typer.Option(help="Only cases whose 'suite › id › name' "
                                             "matches this regular expression.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Only cases with this tag "
                                                  "(repeatable: any of them).")] = None,
    last_failed: Annotated[bool, typer.Option(help="Only the cases that did not pass in the "
                                              "last run in --output.")] = False,
    max_failures: Annotated[int | None, typer.Option(min=1, help="Skip the remaining cases "
                                                     "after N failed ones.")] = None,
    fail_on_flaky: Annotated[bool, typer.Option(help="Exit 1 when a case was flaky.")] = False,
    reporter: Annotated[str, typer.Option(help="Comma-separated: list (a line per case), "
                                          "junit (junit.xml), html (report.html), json "
                                          "(report.json summary).")] = DEFAULT_REPORTERS,
    output: Annotated[Path, typer.Option(help="Folder for results, reports and the audit "
                                         "log (cleared of the previous run's).")
                      ] = DEFAULT_OUTPUT,
    keep_sandbox_on_failure: Annotated[bool, typer.Option(
        help="Keep a failing attempt's desktop running and print how to watch it over VNC; "
             "the runner waits for Ctrl-C at the end.")] = False,
    planner: Annotated[str, typer.Option(help="Planner for `goal` cases: anthropic, openai or "
                                         "openai-cua (script: goal cases error).")] = "script",
    model: Annotated[str | None, typer.Option(help="Model name for goal cases.")] = None,
    base_url: Annotated[str | None, typer.Option(help="API base URL for goal cases.")] = None,
    oracle: Annotated[bool, typer.Option(help="Run each case's `oracle` steps instead of its "
                                         "steps and goal (checks a task set).")] = False,
    approver: Annotated[str, typer.Option(help="none (an `ask` is a deny) or tui (answer in "
                                          "`deskhand tui --attach --db OUTPUT/audit.db`).")
                        ] = "none",
    approval_timeout: Annotated[float, typer.Option(help="Seconds an approval waits with "
                                                    "--approver tui.")] = 120.0,
    engine: Annotated[list[str] | None, typer.Option(help="Docker engine URL (unix://, "
                                                     "tcp://, ssh://); repeat to spread "
                                                     "cases over several.")] = None,
    sandbox: Annotated[str | None, typer.Option(help="docker, local or auto, for cases "
                                                "whose suite does not say.")] = None,
    screen: Annotated[str | None, typer.Option(help="Screen size, e.g. 1280x800.")] = None,
    parser: Annotated[str | None, typer.Option(
        help="What a click at coordinates is judged by: ocr (default: goal cases by the "
             "words under it, scripted cases by nothing) or a11y / auto (the accessibility "
             "tree first, for scripted cases too).")] = None,
    models: Annotated[str | None, typer.Option(help="Benchmark: comma-separated models for "
                                               "goal cases, run one after the other "
                                               "(e.g. claude-a,claude-b).")] = None,
    trials: Annotated[int, typer.Option(min=1, max=1000, help="Benchmark: trials of every "
                                        "task per model and budget (pass@k uses k = "
                                        "trials).")] = 1,
    budget_steps: Annotated[str | None, typer.Option(help="Benchmark: comma-separated step "
                                                     "budgets, each run in turn (e.g. "
                                                     "15,50).")] = None,
    resume: Annotated[bool, typer.Option(help="Benchmark: keep --output's results.jsonl and "
                                         "run only the trials it lacks (same flags as the "
                                         "interrupted run).")] = False,
    cache: Annotated[str, typer.Option(help="Plan cache for goal steps: read-write, "
                                       "read-only, write-only or off.")] = "off",
    cache_dir: Annotated[Path, typer.Option(help="Plan cache folder (commit it to share "
                                            "plans).")] = Path(".deskhand-cache/plans"),
) -> None:
    """Run scripted UI test suites in fresh hardened desktops (see `deskhand test --help`)."""
    if paths and paths[0] == Path("merge") and not paths[0].exists():
        raise typer.Exit(merge(paths[1:], output=output, reporter=reporter))
    reporters = _reporters(reporter)
    if approver not in {"none", "tui"}:
        _usage(f"--approver must be none or tui, not {approver!r}")
    settings = _settings(planner=planner, model=model, base_url=base_url, sandbox=sandbox,
                         screen=screen, parser=parser)
    if settings.parser not in SUITE_PARSERS:
        _usage(f"--parser {settings.parser!r}: choose one of {', '.join(SUITE_PARSERS)} "
               "(suites read text with the offline OCR)")
    bench = _benchmark_options(models=models, trials=trials, budget_steps=budget_steps,
                               resume=resume, cache=cache, cache_dir=cache_dir)
    code = _guarded(lambda: _test(paths, settings, workers=workers, shard=shard,
                                  retries=retries, repeat_each=repeat_each, grep=grep,
                                  tags=tuple(tag or ()), last_failed=last_failed,
                                  max_failures=max_failures, fail_on_flaky=fail_on_flaky,
                                  reporters=reporters, output=output,
                                  keep=keep_sandbox_on_failure, oracle=oracle,
                                  approval_timeout=approval_timeout if approver == "tui"
                                  else 0.0, engines=tuple(engine or ()), sandbox=sandbox,
                                  bench=bench))
    raise typer.Exit(code)


def _test(paths: Sequence[Path], settings: Settings, *, workers: int, shard: str | None,
          retries: int | None, repeat_each: int, grep: str | None, tags: tuple[str, ...],
          last_failed: bool, max_failures: int | None, fail_on_flaky: bool,
          reporters: frozenset[str], output: Path, keep: bool, oracle: bool,
          approval_timeout: float, engines: tuple[str, ...], sandbox: str | None,
          bench: BenchmarkOptions | None = None) -> int:
    import re

    from agent.suites import results, runner, schema

    suites = schema.load_suites(paths)
    _check_policies(suites)
    _check_secrets(suites)
    try:
        selection = runner.Selection(
            grep=re.compile(grep).pattern if grep else None, tags=tags,
            shard=runner.parse_shard(shard) if shard else None,
            only_keys=frozenset(results.failed_keys(output / results.RESULTS_FILE))
            if last_failed else None, repeat_each=repeat_each)
    except re.error as exc:
        _usage(f"--grep is not a regular expression: {exc}")
    planned = runner.select_cases(suites, selection)
    if bench is not None and bench.active:
        return _run_benchmark(planned, settings, bench, workers=workers, retries=retries,
                              max_failures=max_failures, approval_timeout=approval_timeout,
                              engines=engines, sandbox=sandbox, oracle=oracle,
                              reporters=reporters, output=output)
    _clear_outputs(output)
    return _run_planned(planned, settings, workers=workers, retries=retries,
                        max_failures=max_failures, fail_on_flaky=fail_on_flaky,
                        reporters=reporters, output=output, keep=keep, oracle=oracle,
                        approval_timeout=approval_timeout, engines=engines, sandbox=sandbox)


def _benchmark_options(*, models: str | None, trials: int, budget_steps: str | None,
                       resume: bool, cache: str, cache_dir: Path) -> BenchmarkOptions:
    from agent.suites import benchmark

    try:
        return benchmark.BenchmarkOptions(
            models=benchmark.parse_models(models), trials=trials,
            budgets=benchmark.parse_budgets(budget_steps), resume=resume,
            cache=benchmark.check_cache_mode(cache), cache_dir=cache_dir)
    except ValueError as exc:
        _usage(str(exc))
        raise


def _run_benchmark(planned: Sequence[PlannedCase], settings: Settings,
                   bench: BenchmarkOptions, *, workers: int, retries: int | None,
                   max_failures: int | None, approval_timeout: float,
                   engines: tuple[str, ...], sandbox: str | None, oracle: bool,
                   reporters: frozenset[str], output: Path) -> int:
    """--models/--trials/--budget-steps/--resume/--cache: see agent.suites.benchmark."""
    from agent.suites import benchmark

    if not bench.resume:
        _clear_outputs(output)
    flags = benchmark.RunnerFlags(workers=workers, retries=retries, max_failures=max_failures,
                                  approval_timeout=approval_timeout, engines=engines,
                                  sandbox=sandbox, environment=os.environ)
    ended = benchmark.run_benchmark(planned, settings, bench, flags, oracle=oracle,
                                    reporters=reporters, output=output, out=out,
                                    report=_report)
    if ended.interrupted:
        err.print(f"interrupted: finished trials are in {output / 'results.jsonl'}; "
                  "finish them with the same command and --resume")
        return EXIT_INTERRUPTED
    return ended.code
def _check_secrets(suites: Sequence[Suite]) -> None:
    """Every secret a suite names can be read, before any sandbox starts (SuiteError if not)."""
    from agent.secrecy import resolve_secrets
    from agent.suites.errors import SuiteError
    from policies.errors import Problem

    problems: list[Problem] = []
    for suite in suites:
        for case in suite.cases[:1]:  # the secrets are the suite's defaults
            try:
                resolve_secrets(dict(case.secrets))
            except ConfigError as exc:
                problems.append(Problem(str(suite.path), None, "defaults.secrets", str(exc)))
    if problems:
        raise SuiteError(problems)


def _suite_secret_values(planned: Sequence[PlannedCase]) -> list[str]:
    """The values the audit log must scrub: every secret the planned cases name."""
    from agent.secrecy import resolve_secrets

    sources = {pair for p in planned for pair in p.case.secrets}
    return [resolve_secrets({name: source})[name] for name, source in sorted(sources)]


def _check_policies(suites: Sequence[Suite]) -> None:
    """Every policy the cases name loads, before any sandbox starts (SuiteError if not)."""
    from agent import runs
    from agent.suites.errors import SuiteError
    from policies.errors import Problem

    problems: list[Problem] = []
    tried: dict[str, str] = {}
    for suite in suites:
        for case in suite.cases:
            if case.policy not in tried:
                try:
                    runs.load_policy_named(case.policy)
                    tried[case.policy] = ""
                except ValueError as exc:
                    tried[case.policy] = str(exc).splitlines()[0]
            if tried[case.policy]:
                problems.append(Problem(str(suite.path), case.line, "policy",
                                        f"{case.policy}: {tried[case.policy]}"))
    if problems:
        raise SuiteError(problems)


def _run_planned(planned: Sequence[PlannedCase], settings: Settings, *, workers: int,
                 retries: int | None, max_failures: int | None, fail_on_flaky: bool,
                 reporters: frozenset[str], output: Path, keep: bool, oracle: bool,
                 approval_timeout: float, engines: tuple[str, ...],
                 sandbox: str | None) -> int:
    from agent.suites import attempt, progress, results, runner
    from audit.log import AuditLog

    run_id = uuid.uuid4().hex
    options = attempt.RunOptions(settings=settings, run_id=run_id,
                                 approval_timeout_s=approval_timeout,
                                 keep_sandbox_on_failure=keep, oracle=oracle, sandbox=sandbox)
    pool = runner.engines_for(engines, os.environ)
    perception = attempt.SharedPerception()
    count = max(1, min(workers, len(planned)))
    out.print(f"deskhand test: {len(planned)} case runs, {count} worker(s), "
              f"engines: {', '.join(e.label for e in pool)}; output {output}")
    redact = [*settings.secrets(), *_suite_secret_values(planned)]
    with AuditLog.open(output / "audit.db", redact=redact) as log, \
            progress.LiveProgress(out, count, len(planned),
                                  list_cases="list" in reporters) as live:
        if approval_timeout:
            out.print(f"  approvals: deskhand tui --attach --db {output / 'audit.db'}")
        envs = [attempt.WorkerEnv(index=i, engine=pool[(i - 1) % len(pool)], log=log,
                                  perception=perception) for i in range(1, count + 1)]
        suite_runner = runner.SuiteRunner(
            planned, options=options, envs=envs,
            results=results.ResultsFile(output / results.RESULTS_FILE), retries=retries,
            max_failures=max_failures, progress=live)
        try:
            attempts = suite_runner.run()
            if options.interrupted.is_set():
                err.print(f"interrupted: finished attempts are in "
                          f"{output / results.RESULTS_FILE}")
            _hold_kept(envs)
        finally:
            for engine in pool:
                engine.close()
    code = _report(attempts, output, reporters, fail_on_flaky)
    return EXIT_INTERRUPTED if options.interrupted.is_set() else code


def _report(attempts: Sequence[AttemptResult], output: Path, reporters: frozenset[str],
            fail_on_flaky: bool) -> int:
    from agent.suites import results
    from agent.suites.reports import write_reports

    cases = results.fold_cases(attempts)
    write_reports(cases, output, reporters)
    tally = results.counts(cases)
    summary = ", ".join(f"{n} {status}" for status, n in tally.items() if n)
    out.print(f"{len(cases)} cases: {summary or 'none'}")
    for name in ("junit.xml", "report.html", "report.json"):
        if (output / name).exists():
            out.print(f"  {output / name}")
    return exit_code(tally, fail_on_flaky)


def exit_code(tally: dict[str, int], fail_on_flaky: bool) -> int:
    """3 when infrastructure failed, else 1 when a case failed (or was flaky, if asked), 0."""
    if tally.get("error"):
        return EXIT_INFRA
    failing = sum(tally.get(s, 0) for s in ("failed", "blocked_by_policy", "budget_exceeded"))
    if failing or (fail_on_flaky and tally.get("flaky")):
        return EXIT_FAILED
    return 0


def merge(dirs: Sequence[Path], *, output: Path, reporter: str) -> int:
    """``deskhand test merge DIR...``: one report from shards; every audit chain verified."""
    from agent.suites.merge import merge_outputs

    if not dirs:
        _usage("deskhand test merge needs the shard output folders")
    if output in dirs:
        _usage("--output must be a new folder, not one of the merged ones")

    def work() -> int:
        attempts, problems = merge_outputs(dirs, output)
        for problem in problems:
            err.print(f"[red]audit chain:[/] {problem}")
        code = _report(attempts, output, _reporters(reporter), fail_on_flaky=False)
        return EXIT_INFRA if problems else code

    return _guarded(work)


def _hold_kept(envs: Sequence[WorkerEnv]) -> None:
    kept = [box for env in envs for box in env.kept]
    if not kept:
        return
    for box in kept:
        viewer = box.viewer
        if viewer is not None:
            out.print(f"  kept {box.kind} sandbox: vncviewer {viewer.host}::{viewer.port}  "
                      f"password: {viewer.password}")
    out.print("  press Ctrl-C to remove the kept sandboxes")
    try:
        import threading

        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for box in kept:
            box.stop()


def _reporters(text: str) -> frozenset[str]:
    chosen = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = chosen - REPORTERS
    if unknown:
        _usage(f"--reporter: unknown {', '.join(sorted(unknown))} "
               f"(choose from {', '.join(sorted(REPORTERS))})")
    return chosen


def _settings(**overrides: str | None) -> Settings:
    try:
        from agent.settings import Settings

        return Settings().with_overrides(**overrides)
    except ValueError as exc:
        _usage(str(exc).splitlines()[0])
        raise


def _clear_outputs(output: Path) -> None:
    for name in OUTPUTS:
        target = output / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _usage(message: str) -> None:
    err.print(f"[red]error:[/] {message}")
    raise typer.Exit(EXIT_USAGE)


def _guarded(work: Callable[[], int]) -> int:
    from sandbox.errors import SandboxError

    try:
        return work()
    except (DeskhandError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        return EXIT_USAGE
    except SandboxError as exc:
        err.print(f"[red]sandbox error:[/] {exc}")
        return EXIT_INFRA


def register(app: typer.Typer) -> None:
    """Add ``deskhand test`` (and its ``merge`` form) to ``app``."""
    app.command("test", help=HELP, no_args_is_help=True)(run_suites)
