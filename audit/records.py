"""Value objects going into and out of the audit log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the action models load with the readers, not with `deskhand --help`
    from policies.decision import TargetElement
    from sandbox.actions import Action

Outcome = Literal["done", "failed", "denied", "interrupted", "error", "budget"]
StepStatus = Literal["pending", "done", "error", "denied", "invalid", "interrupted"]
ResultStatus = Literal["done", "error", "denied", "interrupted"]
Scope = Literal["once", "session"]
ApprovalStatus = Literal["pending", "approved", "denied", "expired"]


@dataclass(slots=True)
class SessionInfo:
    """What a session records about itself when it starts."""

    task: str
    planner: str
    model: str
    policy_name: str
    policy_sha256: str
    sandbox_kind: str
    sandbox_image: str
    screen_width: int
    screen_height: int
    network: bool
    triage: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """An approval waiting for an answer."""

    id: int
    step_id: int
    session_id: str
    frame_sha256: str
    summary: str
    rule_ids: tuple[str, ...]
    reason: str
    requested_at: float
    deadline_at: float


@dataclass(frozen=True, slots=True)
class ApprovalAnswer:
    """The first answer given to an approval."""

    approved: bool
    scope: Scope
    approver: str
    channel: str
    answered_at: float


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """An approval as stored, answered or not."""

    id: int
    step_id: int
    session_id: str
    frame_sha256: str
    summary: str
    rule_ids: tuple[str, ...]
    reason: str
    timeout_s: float
    requested_at: float
    deadline_at: float
    status: ApprovalStatus
    answer: ApprovalAnswer | None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session as stored."""

    id: str
    task: str
    planner: str
    model: str
    policy_name: str
    policy_sha256: str
    sandbox_kind: str
    sandbox_image: str
    screen_width: int
    screen_height: int
    network: bool
    triage: dict[str, Any] | None
    extra: dict[str, Any]
    pid: int
    host: str
    started_at: float
    ended_at: float | None
    outcome: str | None
    reason: str | None
    step_count: int = 0

    @property
    def started(self) -> datetime:
        return datetime.fromtimestamp(self.started_at, UTC)

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclass(frozen=True, slots=True)
class StepRecord:
    """A step as stored: what was proposed, decided, approved and what happened."""

    id: int
    session_id: str
    index: int
    action: Action | None
    """The action as proposed (typed text masked when secret); None when it was invalid."""
    proposed_raw: Any
    validation_error: str | None
    decision_effect: str | None
    rule_ids: tuple[str, ...]
    decision_reason: str | None
    policy_sha256: str | None
    secret: bool
    frame_before_sha256: str | None
    status: str
    created_at: float
    output: dict[str, Any] | None
    error: str | None
    frame_after_sha256: str | None
    timings_ms: dict[str, float]
    usage: dict[str, Any] | None
    finished_at: float | None
    approval: ApprovalRecord | None = None
    target_element: TargetElement | None = None
    """The element under a click when its intent was recorded (role, name, box, source)."""

    @property
    def action_type(self) -> str | None:
        return None if self.action is None else self.action.type


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    session_id: str
    kind: str
    data: dict[str, Any]
    at: float


RUN_NOTE_EVENT = "run_note"
"""An event holding what a run's front end was told (which sandbox, what cannot be read)."""


def run_notes(events: list[EventRecord]) -> list[str]:
    """A run's notes, in the order they were said."""
    return [str(e.data.get("text", "")) for e in events if e.kind == RUN_NOTE_EVENT]


@dataclass(frozen=True, slots=True)
class Usage:
    """What a step's planner turn cost: tokens and an estimate in USD."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
