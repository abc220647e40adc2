"""Selection, shards, statuses and exit codes (no sandbox needed)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from agent.settings import Settings
from agent.suites.attempt import Engine, RunOptions, SharedPerception, WorkerEnv
from agent.suites.cli import exit_code
from agent.suites.results import (
    AttemptResult,
    ResultsFile,
    counts,
    fold_cases,
    read_results,
)
from agent.suites.runner import (
    Selection,
    SuiteRunner,
    parse_shard,
    select_cases,
    shard_of,
)
from agent.suites.schema import Case, load_suite
from audit.log import AuditLog


def suite_file(tmp_path: Path, n: int = 40) -> Path:
    cases = "".join(f"  - id: case-{i}\n    tags: [{'even' if i % 2 == 0 else 'odd'}]\n"
                    "    steps: [{wait: 0}]\n" for i in range(n))
    path = tmp_path / "many.suite.yaml"
    path.write_text(f"suite: Many\ncases:\n{cases}", encoding="utf-8")
    return path


def test_shards_split_every_case_exactly_once_and_stably(tmp_path: Path) -> None:
    suite = load_suite(suite_file(tmp_path))
    shares = [select_cases([suite], Selection(shard=(i, 3))) for i in (1, 2, 3)]
    ids = [p.case.id for share in shares for p in share]
    assert sorted(ids) == sorted(c.id for c in suite.cases)
    assert all(share for share in shares)
    again = load_suite(suite_file(tmp_path))
    assert [shard_of(c, 3) for c in again.cases] == [shard_of(c, 3) for c in suite.cases]


def test_grep_tag_and_repeat_select_cases(tmp_path: Path) -> None:
    suite = load_suite(suite_file(tmp_path, 6))
    assert [p.case.id for p in select_cases([suite], Selection(grep=r"case-[12]$"))] == \
        ["case-1", "case-2"]
    assert [p.case.id for p in select_cases([suite], Selection(tags=("odd",)))] == \
        ["case-1", "case-3", "case-5"]
    repeated = select_cases([suite], Selection(grep="case-0", repeat_each=3))
    assert [p.repeat for p in repeated] == [1, 2, 3]


@pytest.mark.parametrize("text", ["0/2", "3/2", "1-2", "x"])
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(text)


def attempt(case: str, number: int, status: str) -> AttemptResult:
    return AttemptResult(run_id="r", suite="S", file="s.suite.yaml", case=case, name=case,
                         attempt=number, repeat=1, status=status)


def test_a_pass_after_a_failure_is_flaky_and_keeps_every_attempt(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    lines = [attempt("a", 1, "failed"), attempt("a", 2, "passed"), attempt("b", 1, "passed"),
             attempt("c", 1, "failed"), attempt("c", 2, "failed")]
    path.write_text("".join(a.to_json() + "\n" for a in lines) + '{"cut off', encoding="utf-8")
    cases = fold_cases(read_results(path))
    assert [(c.key.split("::")[1], c.status, len(c.attempts)) for c in cases] == [
        ("a", "flaky", 2), ("b", "passed", 1), ("c", "failed", 2)]


def test_exit_codes() -> None:
    assert exit_code(counts([]), fail_on_flaky=False) == 0
    passed_and_flaky = fold_cases([attempt("a", 1, "failed"), attempt("a", 2, "passed")])
    assert exit_code(counts(passed_and_flaky), fail_on_flaky=False) == 0
    assert exit_code(counts(passed_and_flaky), fail_on_flaky=True) == 1
    assert exit_code(counts(fold_cases([attempt("b", 1, "blocked_by_policy")])), False) == 1
    assert exit_code(counts(fold_cases([attempt("b", 1, "failed"),
                                        attempt("c", 1, "error")])), False) == 3


def test_an_attempt_that_raises_is_an_error_result_not_a_lost_case(
        tmp_path: Path) -> None:
    suite = load_suite(suite_file(tmp_path, 3))
    planned = select_cases([suite], Selection())

    def attempt_raising_on_case_1_of_3(case: Case, number: int, repeat: int, options: RunOptions,
                                  env: WorkerEnv) -> AttemptResult:
        if case.id == "case-1":
            raise ConnectionResetError("the engine hung up")
        return attempt(case.id, number, "passed")

    engine = Engine("tcp://127.0.0.1:9")  # an engine URL nothing answers on
    with AuditLog.open(tmp_path / "audit.db") as log:
        env = WorkerEnv(index=1, engine=engine, log=log, perception=SharedPerception())
        runner = SuiteRunner(planned, options=RunOptions(settings=Settings(), run_id="r"),
                             envs=[env], results=ResultsFile(tmp_path / "results.jsonl"),
                             retries=0, attempt=attempt_raising_on_case_1_of_3)
        attempts = runner.run()
    engine.close()
    written = read_results(tmp_path / "results.jsonl")
    assert [(a.case, a.status) for a in written] == [
        ("case-0", "passed"), ("case-1", "error"), ("case-2", "error")]
    assert "ConnectionResetError: the engine hung up" in written[1].message
    assert len(attempts) == 3
    # The engine does not answer, so the worker retired after the crash; the case it never
    # reached is still in the results, as an error saying why.
    assert "no worker left" in written[2].message


def test_ctrl_c_while_a_worker_is_mid_case_waits_for_it_and_loses_no_case(
        tmp_path: Path) -> None:
    # Python 3.11's Thread.join, interrupted by Ctrl-C, can mark a thread that is
    # still running as stopped (CPython issue 90882): a runner that joined its
    # workers returned without the case they were running.  And a Ctrl-C inside
    # Thread.start escaped the runner with its workers still going.
    suite = load_suite(suite_file(tmp_path, 4))
    planned = select_cases([suite], Selection())
    both_running = threading.Barrier(3)
    release = threading.Event()

    def attempt_that_waits_for_the_interrupt(case: Case, number: int, repeat: int,
                                             options: RunOptions,
                                             env: WorkerEnv) -> AttemptResult:
        both_running.wait(60)
        assert options.interrupted.wait(60), "the runner never passed the Ctrl-C on"
        release.wait(0.5)  # still running after the interrupt reached the runner
        return attempt(case.id, number, "error")

    def press_ctrl_c() -> None:
        both_running.wait(60)
        os.kill(os.getpid(), signal.SIGINT)

    engine = Engine("tcp://127.0.0.1:9")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with AuditLog.open(tmp_path / "audit.db") as log:
            envs = [WorkerEnv(index=i, engine=engine, log=log, perception=SharedPerception())
                    for i in (1, 2)]
            runner = SuiteRunner(planned, options=RunOptions(settings=Settings(), run_id="r"),
                                 envs=envs, results=ResultsFile(tmp_path / "results.jsonl"),
                                 retries=0, attempt=attempt_that_waits_for_the_interrupt)
            presser = threading.Thread(target=press_ctrl_c)
            presser.start()
            attempts = runner.run()
            presser.join()
    finally:
        signal.signal(signal.SIGINT, previous)
        engine.close()

    assert sorted(a.case for a in attempts) == ["case-0", "case-1", "case-2", "case-3"]
    running = [a for a in attempts if a.case in {"case-0", "case-1"}]
    assert [a.message for a in running] == ["", ""], "both running cases reported themselves"
    assert {a.message for a in attempts if a.case in {"case-2", "case-3"}} == {
        "interrupted before it ran"}
