"""Suite runs as the sessions browser groups them: run → case → attempts.

``deskhand test`` records one audit session per attempt, tagged in the
session's ``extra`` with the suite, the case, the attempt and the run, and
closes each with a ``suite_result`` event that carries the attempt's status.
This module turns those records into the tree the browser shows; it reads
nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from audit.records import SessionRecord


@dataclass(slots=True)
class Attempt:
    session_id: str
    attempt: int
    repeat: int
    status: str  # the suite_result status, or the session's outcome while none is recorded


@dataclass(slots=True)
class CaseRow:
    case: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def status(self) -> str:
        """Like the runner's: flaky when a failed attempt was followed by a passing one."""
        statuses = [a.status for a in sorted(self.attempts, key=lambda a: (a.repeat, a.attempt))]
        if statuses and statuses[-1] == "passed" and any(s != "passed" for s in statuses):
            return "flaky"
        return statuses[-1] if statuses else "unknown"


@dataclass(slots=True)
class SuiteRun:
    run_id: str
    suite: str
    started_at: float
    cases: dict[str, CaseRow] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for case in self.cases.values():
            counted[case.status] = counted.get(case.status, 0) + 1
        return counted


def is_suite_attempt(session: SessionRecord) -> bool:
    return "suite" in session.extra and "case" in session.extra


def group_suite_runs(sessions: Iterable[SessionRecord],
                     status_of: Callable[[SessionRecord], str]) -> list[SuiteRun]:
    """Suite attempts grouped by run (newest first), then case, then attempt."""
    runs: dict[tuple[str, str], SuiteRun] = {}
    for session in sessions:
        if not is_suite_attempt(session):
            continue
        extra = session.extra
        key = (str(extra.get("run_id", "")), str(extra["suite"]))
        run = runs.setdefault(key, SuiteRun(run_id=key[0], suite=key[1],
                                            started_at=session.started_at))
        run.started_at = min(run.started_at, session.started_at)
        case = run.cases.setdefault(str(extra["case"]), CaseRow(str(extra["case"])))
        case.attempts.append(Attempt(session_id=session.id, attempt=_int(extra, "attempt"),
                                     repeat=_int(extra, "repeat"), status=status_of(session)))
    for run in runs.values():
        for case in run.cases.values():
            case.attempts.sort(key=lambda a: (a.repeat, a.attempt))
    return sorted(runs.values(), key=lambda r: r.started_at, reverse=True)


def _int(extra: dict[str, object], name: str) -> int:
    value = extra.get(name, 0)
    return value if isinstance(value, int) else 0
