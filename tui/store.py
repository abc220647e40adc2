"""The TUI's one window onto the audit log (the UI thread's own connection).

Widgets ask this class, never the log directly: it turns stored records into
what a screen shows (a decoded frame, a typed action) and keeps the few
caches that make polling cheap.  A run in a worker thread opens its own
connection (see :mod:`tui.runner`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from PIL import Image

from audit.errors import AuditError
from audit.records import ApprovalRequest, EventRecord, Scope, SessionRecord, StepRecord
from sandbox.actions import Action

log = logging.getLogger(__name__)

FRAME_CACHE_SIZE = 32
STEP_CACHE_SIZE = 4096


class ReadableLog(Protocol):
    """The part of :class:`audit.log.AuditLog` the TUI reads and answers through."""

    def pending_approvals(self, session_id: str | None = None) -> list[ApprovalRequest]: ...

    def answer_approval(self, approval_id: int, *, approved: bool, scope: Scope,
                        approver: str, channel: str) -> bool: ...

    def get_frame_image(self, sha256: str) -> Image.Image: ...

    def steps(self, session_id: str) -> list[StepRecord]: ...

    def get_session(self, id_or_prefix: str) -> SessionRecord: ...

    def events(self, session_id: str) -> list[EventRecord]: ...

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

    def running_sessions(self, limit: int = 50) -> list[SessionRecord]:
        """Sessions not ended yet, newest first."""
        return self.audit.list_sessions(outcome="running", limit=limit)


def action_of(step: StepRecord | None) -> Action | None:
    """The step's action as a typed model, or None (invalid or missing)."""
    return None if step is None else step.action


def rule_list(rule_ids: Sequence[str]) -> str:
    return ", ".join(rule_ids) or "no rule matched (default deny)"
