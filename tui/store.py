"""The TUI's one window onto the audit log (the UI thread's own connection).

Widgets ask this class, never the log directly: it turns stored records into
what a screen shows (a decoded frame, a typed action) and keeps the few
caches that make polling cheap.  A run in a worker thread opens its own
connection (see :mod:`tui.runner`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from agent.undo import answer_to, request_undo
from audit.checkpoints import CHECKPOINT_EVENT, Checkpoint, checkpoint_before
from audit.errors import AuditError
from audit.liveness import SessionLocks
from audit.records import (
    ApprovalRecord,
    ApprovalRequest,
    EventRecord,
    Scope,
    SessionRecord,
    StepRecord,
)
from audit.undo_marks import UndoMark, undo_marks
from sandbox.actions import Action
from tui.suite_runs import SuiteRun, group_suite_runs

log = logging.getLogger(__name__)

FRAME_CACHE_SIZE = 32
STEP_CACHE_SIZE = 4096


class ReadableLog(Protocol):
    """The part of :class:`audit.log.AuditLog` the TUI reads and answers through."""

    path: Path

    def pending_approvals(self, session_id: str | None = None) -> list[ApprovalRequest]: ...

    def answer_approval(self, approval_id: int, *, approved: bool, scope: Scope,
                        approver: str, channel: str) -> bool: ...

    def get_frame_image(self, sha256: str) -> Image.Image: ...

    def steps(self, session_id: str) -> list[StepRecord]: ...

    def get_session(self, id_or_prefix: str) -> SessionRecord: ...

    def events(self, session_id: str) -> list[EventRecord]: ...

    def approvals(self, session_id: str) -> list[ApprovalRecord]: ...

    def record_event(self, session_id: str, kind: str, data: dict[str, Any]) -> None: ...

    def list_sessions(self, *, outcome: str | None = None,
                      since: datetime | float | None = None,
                      until: datetime | float | None = None, text: str | None = None,
                      limit: int | None = 50) -> list[SessionRecord]: ...


class TuiStore:
    """Reads for screens, answers for the approval queue."""

    def __init__(self, audit: ReadableLog) -> None:
        self.audit = audit
        self._frames: OrderedDict[str, Image.Image] = OrderedDict()
        self._steps: dict[int, StepRecord] = {}

    # -- approvals -------------------------------------------------------------

    def pending(self) -> list[ApprovalRequest]:
        """Every unanswered approval, oldest first, from any process."""
        return sorted(self.audit.pending_approvals(), key=lambda r: (r.requested_at, r.id))

    def answer(self, approval_id: int, *, approved: bool, scope: Scope, approver: str,
               channel: str) -> bool:
        """Record an answer; False when another approver answered first."""
        return self.audit.answer_approval(approval_id, approved=approved, scope=scope,
                                          approver=approver, channel=channel)

    def deny_waiting(self, session_id: str, *, approver: str, channel: str) -> None:
        """Deny what ``session_id`` waits for (its run is being stopped)."""
        for request in self.audit.pending_approvals(session_id):
            self.answer(request.id, approved=False, scope="once", approver=approver,
                        channel=channel)

    def window_title_for(self, request: ApprovalRequest) -> str | None:
        """The focused window's title when the request was made, if its run recorded it."""
        try:
            events = self.audit.events(request.session_id)
        except AuditError:
            return None
        for event in reversed(events):
            if event.kind == "approval_context" and event.data.get("approval_id") == request.id:
                return str(event.data.get("window_title") or "") or None
        return None

    def step_for(self, request: ApprovalRequest) -> StepRecord | None:
        """The step an approval request is about."""
        if request.step_id not in self._steps:
            if len(self._steps) > STEP_CACHE_SIZE:
                self._steps.clear()
            steps = self.audit.steps(request.session_id)
            self._steps.update({step.id: step for step in steps})
        return self._steps.get(request.step_id)

    # -- frames and steps --------------------------------------------------------

    def frame(self, sha256: str | None) -> Image.Image | None:
        """A stored frame as an RGB image, or None when it is not stored."""
        if not sha256:
            return None
        cached = self._frames.get(sha256)
        if cached is not None:
            self._frames.move_to_end(sha256)
            return cached
        try:
            image = self.audit.get_frame_image(sha256).convert("RGB")
        except AuditError as exc:
            log.info("frame %s not available: %s", sha256[:12], exc)
            return None
        self._frames[sha256] = image
        while len(self._frames) > FRAME_CACHE_SIZE:
            self._frames.popitem(last=False)
        return image

    def steps(self, session_id: str) -> list[StepRecord]:
        return self.audit.steps(session_id)

    # -- sessions ----------------------------------------------------------------

    def session(self, session_id: str) -> SessionRecord | None:
        try:
            return self.audit.get_session(session_id)
        except AuditError:
            return None

    def sessions_before(self, started_before: float | None, limit: int) -> list[SessionRecord]:
        """Up to ``limit`` sessions started before ``started_before``, newest first.

        Paging by start time (not by offset) keeps every page as cheap as the first.
        """
        return self.audit.list_sessions(until=started_before, limit=limit)

    def suite_runs(self, limit: int = 2000) -> list[SuiteRun]:
        """The ``deskhand test`` runs among the newest ``limit`` sessions, grouped by run and
        case, each attempt with the status its ``suite_result`` event recorded."""
        return group_suite_runs(self.audit.list_sessions(limit=limit), self._suite_status)

    def _suite_status(self, session: SessionRecord) -> str:
        results = [e for e in self.audit.events(session.id) if e.kind == "suite_result"]
        if results:
            return str(results[-1].data.get("status", "unknown"))
        return session.outcome or "running"

    def running_sessions(self, limit: int = 50) -> list[SessionRecord]:
        """Sessions not ended yet, newest first."""
        return self.audit.list_sessions(outcome="running", limit=limit)

    # -- approval history, checkpoints and undo -----------------------------------

    def answered_approvals(self, session_ids: Iterable[str]) -> list[AnsweredApproval]:
        """The approvals of ``session_ids`` that are no longer waiting, newest first."""
        answered = []
        for session_id in session_ids:
            steps = {step.id: step for step in self.audit.steps(session_id)}
            stale = {(e.data.get("step_id"), e.data.get("shown"))
                     for e in self.audit.events(session_id) if e.kind == "approval_stale"}
            answered += [AnsweredApproval(approval, steps.get(approval.step_id),
                                          (approval.step_id, approval.frame_sha256) in stale)
                         for approval in self.audit.approvals(session_id)
                         if approval.status != "pending"]
        return sorted(answered, key=lambda a: (a.approval.requested_at, a.approval.id),
                      reverse=True)

    def undo_marks(self, session_id: str) -> list[UndoMark]:
        """The session's checkpoints, rollbacks and refused undos, placed on its steps."""
        return undo_marks(self.audit.events(session_id), self.audit.steps(session_id))

    def run_is_live(self, session_id: str) -> bool:
        """True while the session's run is going on (in this process or another): not ended,
        and its process still holds the session's lock."""
        session = self.session(session_id)
        if session is None or session.outcome is not None:
            return False
        return not SessionLocks(self.audit.path).owner_is_gone(session_id)

    def checkpoint_before(self, session_id: str, step_index: int) -> Checkpoint | None:
        return checkpoint_before(self.audit, session_id, step_index)

    def takes_checkpoints(self, session_id: str) -> bool:
        """True when the session's run has recorded at least one checkpoint (taken or not)."""
        return any(e.kind == CHECKPOINT_EVENT for e in self.audit.events(session_id))

    def request_undo(self, session_id: str, step_index: int) -> int:
        """Ask the run that owns the session to undo back to before ``step_index`` (the
        same request as ``deskhand undo``); returns the event id its answer comes after."""
        after = max((e.id for e in self.audit.events(session_id)), default=0)
        request_undo(self.audit, session_id, step_index)
        return after

    def undo_answer(self, session_id: str, after: int) -> str | None:
        """The run's answer to an undo requested after event ``after``, once it gave one."""
        return answer_to(self.audit, session_id, after)


@dataclass(frozen=True, slots=True)
class AnsweredApproval:
    """An answered (or expired) approval, with the step it was about, for the history."""

    approval: ApprovalRecord
    step: StepRecord | None
    stale: bool = False
    """Approved, but the screen changed before the step ran, so the run asked again."""


def action_of(step: StepRecord | None) -> Action | None:
    """The step's action as a typed model, or None (invalid or missing)."""
    return None if step is None else step.action


def rule_list(rule_ids: Sequence[str]) -> str:
    return ", ".join(rule_ids) or "no rule matched (default deny)"
