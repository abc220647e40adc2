"""The audit log as an MCP session sees it: each step's intent and approval remembered.

The loop writes to it (``AuditRecorder``) and the broker approver asks
through it (``BrokerLog``); every call goes on to the real log.  What it
remembers lets the session tell a tool call which rule decided its step and
who answered its approval, and lets a closing session end an approval wait
at once (as a denial) instead of holding the desktop for the full timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from agent.mcp.requests import StepTrace
from agent.session_tap import SessionTap
from audit.log import AuditLog
from audit.records import (
    ApprovalAnswer,
    ApprovalRecord,
    Scope,
)
from policies.decision import Decision, TargetElement
from sandbox.actions import Action

# How often an approval wait looks for an answer or for the session closing.
APPROVAL_POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class ApprovalAsked:
    """A step of a ticket waits for a human."""

    approval_id: int
    summary: str
    rule_ids: tuple[str, ...]
    reason: str
    timeout_s: float
    asked_at: float



class ObservedLog(SessionTap):
    """The audit log, seen by the session: remembers each step's intent and approval.

    It is what the loop writes to (``AuditRecorder``) and what the broker
    approver asks through (``BrokerLog``); every call goes to the real log.
    Approval waits also end early, as a denial, when the session closes.
    """

    def __init__(self, log: AuditLog, *, on_approval: Callable[[ApprovalAsked], None],
                 closing: threading.Event) -> None:
        super().__init__(log)
        self._on_approval = on_approval
        self._closing = closing
        self._trace: StepTrace | None = None

    def take_trace(self) -> StepTrace | None:
        trace, self._trace = self._trace, None
        return trace

    def record_intent(self, session_id: str, *, index: int, action: Action | None,
                      proposed_raw: object, validation_error: str | None,
                      decision: Decision | None, frame_before_sha256: str | None,
                      secret: bool, target_element: TargetElement | None = None) -> int:
        step_id = super().record_intent(
            session_id, index=index, action=action, proposed_raw=proposed_raw,
            validation_error=validation_error, decision=decision,
            frame_before_sha256=frame_before_sha256, secret=secret,
            target_element=target_element)
        self._trace = StepTrace(step_id=step_id, index=index, decision=decision,
                                target_element=target_element)
        return step_id

    def request_approval(self, step_id: int, *, frame_sha256: str, summary: str,
                         rule_ids: tuple[str, ...] | list[str], reason: str,
                         timeout_s: float) -> int:
        approval_id = self.log.request_approval(
            step_id, frame_sha256=frame_sha256, summary=summary, rule_ids=rule_ids,
            reason=reason, timeout_s=timeout_s)
        if self._trace is not None and self._trace.step_id == step_id:
            self._trace = replace(self._trace, approval_id=approval_id)
        self._on_approval(ApprovalAsked(approval_id, summary, tuple(rule_ids), reason,
                                        timeout_s, time.monotonic()))
        return approval_id

    def answer_approval(self, approval_id: int, *, approved: bool, scope: Scope,
                        approver: str, channel: str) -> bool:
        return self.log.answer_approval(approval_id, approved=approved, scope=scope,
                                        approver=approver, channel=channel)

    def wait_for_answer(self, approval_id: int, *, timeout_s: float,
                        poll_s: float = 0.05) -> ApprovalAnswer | None:
        if timeout_s <= 0:
            return self.log.wait_for_answer(approval_id, timeout_s=0)
        give_up = time.monotonic() + timeout_s
        while time.monotonic() < give_up and not self._closing.is_set():
            record = self.log.approval(approval_id)
            if record.status != "pending":
                return record.answer
            self._closing.wait(min(APPROVAL_POLL_S, max(0.0, give_up - time.monotonic())))
        # A short positive wait closes the request as expired unless an answer beat it.
        return self.log.wait_for_answer(approval_id, timeout_s=0.001)

    def approval(self, approval_id: int) -> ApprovalRecord:
        return self.log.approval(approval_id)
