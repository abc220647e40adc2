"""The audit log as one run sees it: every write goes on to the log, and the tap
remembers the session it opened.

Front ends that add to what the loop records (the suite runner's checks, the
MCP server's step traces) subclass it instead of re-stating the recorder.
"""

from __future__ import annotations

from typing import Any

from audit.log import AuditLog
from audit.records import Outcome, ResultStatus, SessionInfo, Usage
from policies.decision import Decision, TargetElement
from sandbox.actions import Action
from sandbox.base import Frame


class SessionTap:
    """An :class:`~agent.loop.AuditRecorder` passing every call to ``log``."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self.session_id = ""

    def start_session(self, info: SessionInfo) -> str:
        self.session_id = self.log.start_session(info)
        return self.session_id

    def put_frame(self, frame: Frame) -> str:
        return self.log.put_frame(frame)

    def record_intent(self, session_id: str, *, index: int, action: Action | None,
                      proposed_raw: object, validation_error: str | None,
                      decision: Decision | None, frame_before_sha256: str | None,
                      secret: bool, target_element: TargetElement | None = None) -> int:
        return self.log.record_intent(session_id, index=index, action=action,
                                      proposed_raw=proposed_raw,
                                      validation_error=validation_error, decision=decision,
                                      frame_before_sha256=frame_before_sha256, secret=secret,
                                      target_element=target_element)

    def record_result(self, step_id: int, *, status: ResultStatus, output: dict[str, Any],
                      error: str | None, frame_after_sha256: str | None,
                      timings_ms: dict[str, float], usage: Usage | None = None) -> None:
        self.log.record_result(step_id, status=status, output=output, error=error,
                               frame_after_sha256=frame_after_sha256, timings_ms=timings_ms,
                               usage=usage)

    def record_event(self, session_id: str, kind: str, data: dict[str, Any]) -> None:
        self.log.record_event(session_id, kind, data)

    def end_session(self, session_id: str, *, outcome: Outcome, reason: str) -> None:
        self.log.end_session(session_id, outcome=outcome, reason=reason)
