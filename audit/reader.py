"""Read side of the audit log: sessions, steps, approvals and events as records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session as OrmSession

from audit.errors import AmbiguousId, NotFound
from audit.models import ApprovalRow, EventRow, SessionRow, StepRow
from audit.records import (
    ApprovalAnswer,
    ApprovalRecord,
    EventRecord,
    SessionRecord,
    StepRecord,
)
from policies.decision import TargetElement
from sandbox.actions import Action, ActionError, parse_action


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _timestamp(moment: datetime | float | None) -> float | None:
    if moment is None or isinstance(moment, float | int):
        return moment
    return moment.timestamp()


def list_sessions(engine: Engine, *, outcome: str | None = None,
                  since: datetime | float | None = None, until: datetime | float | None = None,
                  text: str | None = None, limit: int | None = 50) -> list[SessionRecord]:
    """Sessions, newest first.  ``outcome="running"`` selects sessions not ended."""
    steps = (select(StepRow.session_id, func.count().label("n"))
             .group_by(StepRow.session_id).subquery())
    query = (select(SessionRow, func.coalesce(steps.c.n, 0))
             .outerjoin(steps, steps.c.session_id == SessionRow.id)
             .order_by(SessionRow.started_at.desc()))
    if outcome == "running":
        query = query.where(SessionRow.ended_at.is_(None))
    elif outcome is not None:
        query = query.where(SessionRow.outcome == outcome)
    if (start := _timestamp(since)) is not None:
        query = query.where(SessionRow.started_at >= start)
    if (end := _timestamp(until)) is not None:
        query = query.where(SessionRow.started_at < end)
    if text:
        pattern = f"%{text}%"
        query = query.where(or_(SessionRow.task.like(pattern), SessionRow.reason.like(pattern),
                                SessionRow.id.like(pattern)))
    if limit is not None:
        query = query.limit(limit)
    with OrmSession(engine) as orm:
        return [_session_record(row, int(count)) for row, count in orm.execute(query)]


def get_session(engine: Engine, id_or_prefix: str) -> SessionRecord:
    """The session with this id, or the only one whose id starts with it."""
    with OrmSession(engine) as orm:
        exact = orm.get(SessionRow, id_or_prefix)
        matches = [exact] if exact is not None else list(orm.scalars(
            select(SessionRow).where(SessionRow.id.like(f"{_escape(id_or_prefix)}%", escape="\\"))
            .limit(6)))
        if not matches or not id_or_prefix:
            raise NotFound(f"no session {id_or_prefix!r}")
        if len(matches) > 1:
            shown = ", ".join(m.id[:12] for m in matches[:5])
            raise AmbiguousId(f"session {id_or_prefix!r} is ambiguous: {shown}...")
        count = orm.scalar(select(func.count()).where(StepRow.session_id == matches[0].id))
        return _session_record(matches[0], int(count or 0))


def _escape(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def steps(engine: Engine, session_id: str) -> list[StepRecord]:
    """The session's steps in order, each with its latest approval."""
    latest = {record.step_id: record for record in approvals(engine, session_id)}
    query = select(StepRow).where(StepRow.session_id == session_id).order_by(StepRow.idx,
                                                                              StepRow.id)
    with OrmSession(engine) as orm:
        return [_step_record(row, latest.get(row.id)) for row in orm.scalars(query)]


def approvals(engine: Engine, session_id: str | None = None, *,
              statuses: Sequence[str] | None = None) -> list[ApprovalRecord]:
    """Approvals in the order they were asked."""
    query = select(ApprovalRow).order_by(ApprovalRow.id)
    if session_id is not None:
        query = query.where(ApprovalRow.session_id == session_id)
    if statuses is not None:
        query = query.where(ApprovalRow.status.in_(statuses))
    with OrmSession(engine) as orm:
        return [_approval_record(row) for row in orm.scalars(query)]


def approval(engine: Engine, approval_id: int) -> ApprovalRecord:
    with OrmSession(engine) as orm:
        row = orm.get(ApprovalRow, approval_id)
        if row is None:
            raise NotFound(f"no approval {approval_id}")
        return _approval_record(row)


def events(engine: Engine, session_id: str) -> list[EventRecord]:
    query = select(EventRow).where(EventRow.session_id == session_id).order_by(EventRow.id)
    with OrmSession(engine) as orm:
        return [EventRecord(id=row.id, session_id=row.session_id, kind=row.kind,
                            data=_json(row.data) or {}, at=row.at)
                for row in orm.scalars(query)]


def _session_record(row: SessionRow, step_count: int) -> SessionRecord:
    return SessionRecord(
        id=row.id, task=row.task, planner=row.planner, model=row.model,
        policy_name=row.policy_name, policy_sha256=row.policy_sha256,
        sandbox_kind=row.sandbox_kind, sandbox_image=row.sandbox_image,
        screen_width=row.screen_width, screen_height=row.screen_height,
        network=bool(row.network), triage=_json(row.triage), extra=_json(row.extra) or {},
        pid=row.pid, host=row.host, started_at=row.started_at, ended_at=row.ended_at,
        outcome=row.outcome, reason=row.reason, step_count=step_count,
    )


def _step_record(row: StepRow, approval: ApprovalRecord | None) -> StepRecord:
    return StepRecord(
        id=row.id, session_id=row.session_id, index=row.idx, action=_stored_action(row.action),
        proposed_raw=_json(row.proposed_raw), validation_error=row.validation_error,
        decision_effect=row.decision_effect, rule_ids=tuple(_json(row.rule_ids) or ()),
        decision_reason=row.decision_reason, policy_sha256=row.policy_sha256,
        secret=bool(row.secret), frame_before_sha256=row.frame_before_sha256,
        status=row.status, created_at=row.created_at, output=_json(row.output),
        error=row.error, frame_after_sha256=row.frame_after_sha256,
        timings_ms=_json(row.timings_ms) or {}, usage=_json(row.usage),
        finished_at=row.finished_at, approval=approval,
        target_element=TargetElement.from_json(_json(row.target_element)),
    )


def _approval_record(row: ApprovalRow) -> ApprovalRecord:
    answer = None
    if row.status in ("approved", "denied"):
        answer = ApprovalAnswer(approved=bool(row.approved),
                                scope="session" if row.scope == "session" else "once",
                                approver=row.approver or "", channel=row.channel or "",
                                answered_at=row.answered_at or 0.0)
    return ApprovalRecord(
        id=row.id, step_id=row.step_id, session_id=row.session_id,
        frame_sha256=row.frame_sha256, summary=row.summary,
        rule_ids=tuple(_json(row.rule_ids) or ()), reason=row.reason, timeout_s=row.timeout_s,
        requested_at=row.requested_at, deadline_at=row.deadline_at,
        status=row.status,  # type: ignore[arg-type]
        answer=answer,
    )


def _stored_action(text: str | None) -> Action | None:
    """The recorded action, typed; None for a step whose proposal was not a valid action."""
    data = _json(text)
    if data is None:
        return None
    try:
        return parse_action(data)
    except ActionError:
        # Written by a version whose vocabulary differed; the chain still covers
        # the stored text, so verification is unaffected.
        return None
