"""Schedule case attempts: selection, shards, repeats, workers over engines, retries.

Selection happens before anything starts: ``--grep`` (a regular expression
over ``suite › case id › name``), ``--tag``, ``--last-failed``, then
``--shard i/n`` — a stable split by a hash of the suite name and case id, so
every machine of a CI matrix computes the same shares without talking.

Each worker is a thread with its own engine (worker *k* uses engine
*k mod E*).  A worker takes the next case, runs attempts until one passes or
the retries are spent, and appends every attempt to ``results.jsonl`` as it
ends.  When an attempt errors and the worker's engine no longer answers, the
worker retires: its case is ``error`` and the others carry on.
"""

from __future__ import annotations

import hashlib
import logging
import re
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from agent.suites.attempt import Engine, RunOptions, WorkerEnv, run_attempt
from agent.suites.results import FAILING, AttemptResult, ResultsFile, case_status
from agent.suites.schema import Case, Suite

log = logging.getLogger(__name__)
# Held back while the workers start (see SuiteRunner._start).
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@dataclass(frozen=True, slots=True)
class Selection:
    grep: str | None = None
    tags: tuple[str, ...] = ()
    shard: tuple[int, int] | None = None
    only_keys: frozenset[str] | None = None
    repeat_each: int = 1


@dataclass(frozen=True, slots=True)
class PlannedCase:
    case: Case
    repeat: int


def parse_shard(text: str) -> tuple[int, int]:
    """``i/n`` with 1 <= i <= n; ValueError otherwise."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if match is None:
        raise ValueError(f"--shard must look like 1/3, not {text!r}")
    index, total = int(match[1]), int(match[2])
    if not 1 <= index <= total:
        raise ValueError(f"--shard {text}: the shard number must be in 1..{total}")
    return index, total


def shard_of(case: Case, total: int) -> int:
    """The shard (1-based) a case belongs to; depends only on the suite name and case id."""
    digest = hashlib.sha256(f"{case.suite.name}\0{case.id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % total + 1


def select_cases(suites: Sequence[Suite], selection: Selection) -> list[PlannedCase]:
    """The cases to run, in file order, each repeated ``repeat_each`` times."""
    pattern = re.compile(selection.grep) if selection.grep else None
    chosen: list[PlannedCase] = []
    for suite in suites:
        for case in suite.cases:
            if _selected(case, selection, pattern):
                chosen.extend(PlannedCase(case, r) for r in range(1, selection.repeat_each + 1))
    return chosen


def _selected(case: Case, selection: Selection, pattern: re.Pattern[str] | None) -> bool:
    title = f"{case.suite.name} › {case.id} › {case.name}"
    if pattern is not None and not pattern.search(title):
        return False
    if selection.tags and not set(selection.tags) & set(case.tags):
        return False
    if selection.only_keys is not None and case.key not in selection.only_keys:
        return False
    return selection.shard is None or shard_of(case, selection.shard[1]) == selection.shard[0]


class Progress:
    """What the runner tells whoever shows progress (the CLI's live display)."""

    def worker_busy(self, worker: int, text: str) -> None:
        pass

    def worker_idle(self, worker: int, text: str) -> None:
        pass

    def case_done(self, status: str, attempts: Sequence[AttemptResult]) -> None:
        pass


@dataclass(slots=True)
class _Queue:
    items: list[PlannedCase]
    lock: threading.Lock = field(default_factory=threading.Lock)
    failures: int = 0

    def take(self) -> PlannedCase | None:
        with self.lock:
            return self.items.pop(0) if self.items else None


class SuiteRunner:
    """Runs planned cases over ``workers`` threads; see the module docstring."""

    def __init__(self, planned: Sequence[PlannedCase], *, options: RunOptions,
                 envs: Sequence[WorkerEnv], results: ResultsFile,
                 retries: int | None = None, max_failures: int | None = None,
                 progress: Progress | None = None,
                 attempt: Callable[[Case, int, int, RunOptions, WorkerEnv],
                                   AttemptResult] = run_attempt) -> None:
        self._queue = _Queue(list(planned))
        self.options = options
        self.envs = list(envs)
        self.results = results
        self.retries = retries
        self.max_failures = max_failures
        self.progress = progress or Progress()
        self._attempt = attempt
        self._lock = threading.Lock()
        self.attempts: list[AttemptResult] = []
        self.stop = options.interrupted
        self._working = 0
        self._all_done = threading.Event()
        self._signal_mask: set[int | signal.Signals] = set()

    def run(self) -> list[AttemptResult]:
        threads = [threading.Thread(target=self._work, args=(env,), name=f"suite-worker-{i}",
                                    daemon=True) for i, env in enumerate(self.envs, 1)]
        self._working = len(threads)
        if not threads:
            self._all_done.set()
        try:
            self._start(threads)
            self._wait_for_workers()
        except KeyboardInterrupt:
            # Each attempt stops at its next step and removes its sandbox; then report.
            self.stop.set()
            self._wait_for_workers()
        for thread in threads:
            thread.join()
        self._skip_remaining("interrupted before it ran" if self.stop.is_set()
                             else "no worker left to run it (every engine failed)")
        return self.attempts

    def _start(self, threads: Sequence[threading.Thread]) -> None:
        """Start every worker, stop signals held back until all run (then delivered).

        A Ctrl-C inside ``Thread.start`` would leave it unknown whether that
        worker runs, and the runner would wait for it in vain or not at all.
        Workers put the mask back before they do anything.
        """
        self._signal_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            for thread in threads:
                thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._signal_mask)

    def _wait_for_workers(self) -> None:
        """Until every worker has recorded its last case.

        An event, not ``Thread.join``: on Python 3.11 a Ctrl-C that interrupts
        ``join`` can mark a thread that is still running as stopped
        (CPython issue 90882), and the case it was running was then lost from
        the report.  A worker's own exit is joined only once this returns.
        """
        while not self._all_done.wait(0.2):
            pass

    def _work(self, env: WorkerEnv) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self._signal_mask)
        try:
            self._work_through_queue(env)
        finally:
            with self._lock:
                self._working -= 1
                if self._working == 0:
                    self._all_done.set()

    def _work_through_queue(self, env: WorkerEnv) -> None:
        try:
            while not self.stop.is_set():
                planned = self._queue.take()
                if planned is None:
                    break
                retire = self._run_case(planned, env)
                if retire:
                    self.progress.worker_idle(env.index, f"retired: engine {env.engine.label} "
                                              "does not answer")
                    return
            self.progress.worker_idle(env.index, "done")
        finally:
            env.desktops.discard()  # the desktop kept for checkpoint isolation

    def _run_case(self, planned: PlannedCase, env: WorkerEnv) -> bool:
        """Run a case's attempts; True when this worker's engine died and it must retire."""
        case = planned.case
        if case.skip or self._too_many_failures():
            reason = case.skip or f"--max-failures {self.max_failures} reached"
            skipped = self._skipped(case, planned.repeat, env, reason)
            self._record(skipped)
            self._finish([skipped])
            return False
        attempts: list[AttemptResult] = []
        retries = case.retries if self.retries is None else self.retries
        for number in range(1, retries + 2):
            self.progress.worker_busy(env.index, f"{case.suite.name} › {case.id} "
                                      f"(attempt {number}, engine {env.engine.label})")
            result = self._guarded_attempt(case, number, planned.repeat, env)
            attempts.append(result)
            self._record(result)
            if result.status == "passed" or self.stop.is_set():
                break
            if result.status == "error" and not env.engine.alive():
                self._finish(attempts)
                return True
        self._finish(attempts)
        return False

    def _guarded_attempt(self, case: Case, number: int, repeat: int,
                         env: WorkerEnv) -> AttemptResult:
        """The attempt's result; an attempt that raised is an ``error`` result, never lost.

        A worker thread that died with its case would leave the case out of every report.
        """
        try:
            return self._attempt(case, number, repeat, self.options, env)
        except Exception as exc:
            log.exception("attempt %d of %s crashed", number, case.key)
            crashed = self._skipped(case, repeat, env, f"the attempt crashed: "
                                    f"{type(exc).__name__}: {exc}")
            crashed.attempt, crashed.status = number, "error"
            crashed.engine, crashed.worker = env.engine.label, env.index
            return crashed

    def _record(self, result: AttemptResult) -> None:
        with self._lock:
            self.attempts.append(result)
        self.results.append(result)

    def _finish(self, attempts: list[AttemptResult]) -> None:
        status = case_status(attempts)
        if status in FAILING or status == "error":
            with self._queue.lock:
                self._queue.failures += 1
        self.progress.case_done(status, attempts)

    def _too_many_failures(self) -> bool:
        with self._queue.lock:
            return self.max_failures is not None and self._queue.failures >= self.max_failures

    def _skip_remaining(self, reason: str) -> None:
        env = self.envs[0] if self.envs else None
        while (planned := self._queue.take()) is not None and env is not None:
            result = self._skipped(planned.case, planned.repeat, env, reason)
            result.status = "error"
            self._record(result)
            self._finish([result])

    def _skipped(self, case: Case, repeat: int, env: WorkerEnv, reason: str) -> AttemptResult:
        return AttemptResult(
            run_id=self.options.run_id, suite=case.suite.name, file=str(case.suite.path),
            case=case.id, name=case.name, attempt=1, repeat=repeat, status="skipped",
            message=reason, policy=case.policy, tags=list(case.tags), case_line=case.line,
            audit_db=str(env.log.path))


def engines_for(urls: Sequence[str], environment: Mapping[str, str]) -> list[Engine]:
    """The engine pool: one per ``--engine`` URL, or the environment's default engine.

    ``environment`` holds the ``DOCKER_*`` settings (TLS certificates, the default host).
    """
    return ([Engine(url, environment) for url in urls] if urls
            else [Engine(None, environment)])
