"""What a suite run produced: one :class:`AttemptResult` per attempt, folded into cases.

``results.jsonl`` holds one attempt per line, written (and flushed) as each
attempt ends, so a runner killed mid-suite leaves every finished attempt on
disk.  A case's status comes from its attempts: ``flaky`` when an attempt
failed and a later retry passed (every attempt is kept).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["passed", "failed", "flaky", "error", "skipped", "blocked_by_policy",
                 "budget_exceeded"]
STATUSES: tuple[Status, ...] = ("passed", "failed", "flaky", "error", "skipped",
                                "blocked_by_policy", "budget_exceeded")
# Statuses of a case that count as a failure of the product under test.
FAILING: frozenset[str] = frozenset({"failed", "blocked_by_policy", "budget_exceeded"})
RESULTS_FILE = "results.jsonl"


@dataclass(slots=True)
class AttemptResult:
    """One attempt of one case (a line of ``results.jsonl``)."""

    run_id: str
    suite: str
    file: str
    case: str
    name: str
    attempt: int
    repeat: int
    status: str
    message: str = ""
    line: int | None = None
    step: str = ""
    duration_s: float = 0.0
    overhead_s: float = 0.0
    session_id: str = ""
    image: str = ""
    policy: str = ""
    policy_sha256: str = ""
    frame_sha256: str = ""
    engine: str = ""
    worker: int = 0
    started_at: float = 0.0
    tags: list[str] = field(default_factory=list)
    case_line: int = 0
    audit_db: str = ""
    steps: int = 0
    isolation: str = "container"
    """``checkpoint`` when the attempt ran on a desktop put back to its post-setup checkpoint."""
    # The planner benchmark's fields (goal cases; see agent.suites.metering).
    model: str = ""
    budget_steps: int = 0
    claimed: str = ""
    model_time_s: float = 0.0
    model_requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    approvals_asked: int = 0
    approvals_denied: int = 0
    cache_hits: int = 0

    @property
    def key(self) -> str:
        return case_key(self.file, self.case)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AttemptResult:
        data: dict[str, Any] = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def case_key(file: str, case: str) -> str:
    return f"{file}::{case}"


@dataclass(frozen=True, slots=True)
class CaseResult:
    """A case with all its attempts and the status they add up to."""

    key: str
    attempts: tuple[AttemptResult, ...]
    status: str

    @property
    def last(self) -> AttemptResult:
        return self.attempts[-1]

    @property
    def first_failure(self) -> AttemptResult | None:
        return next((a for a in self.attempts if a.status != "passed"), None)


def case_status(attempts: Sequence[AttemptResult]) -> str:
    """passed / flaky (failed, then passed) / the last attempt's status."""
    final = attempts[-1].status
    if final == "passed" and any(a.status != "passed" for a in attempts):
        return "flaky"
    return final


def fold_cases(attempts: Iterable[AttemptResult]) -> list[CaseResult]:
    """Group attempts by case and repeat (in first-seen order); one CaseResult each."""
    groups: dict[tuple[str, int], list[AttemptResult]] = {}
    for attempt in attempts:
        groups.setdefault((attempt.key, attempt.repeat), []).append(attempt)
    cases = []
    for (key, _repeat), group in groups.items():
        group.sort(key=lambda a: a.attempt)
        cases.append(CaseResult(key, tuple(group), case_status(group)))
    return cases


def counts(cases: Iterable[CaseResult]) -> dict[str, int]:
    tally: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for case in cases:
        tally[case.status] = tally.get(case.status, 0) + 1
    return tally


class ResultsFile:
    """Appends attempts to ``results.jsonl`` as they finish (thread-safe, flushed each time)."""

    def __init__(self, path: Path, *, keep_existing: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        if keep_existing:  # a resumed benchmark appends to what it found
            path.touch()
        else:
            path.write_text("", encoding="utf-8")

    def append(self, result: AttemptResult) -> None:
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(result.to_json() + "\n")
            out.flush()


def read_results(path: Path) -> list[AttemptResult]:
    """The attempts in a ``results.jsonl`` (a cut-off last line is ignored)."""
    if not path.is_file():
        return []
    results = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            results.append(AttemptResult.from_json(line))
        except (ValueError, TypeError):
            continue
    return results


def failed_keys(path: Path) -> set[str]:
    """Cases whose last run did not pass (for ``--last-failed``)."""
    return {c.key for c in fold_cases(read_results(path))
            if c.status not in {"passed", "skipped"}}
