"""What the reports show of an attempt, read back from the audit log it ran in."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from agent.suites.results import AttemptResult

if TYPE_CHECKING:
    from PIL import Image

    from audit.log import AuditLog
    from audit.records import EventRecord, StepRecord


class Evidence:
    """Opens each attempt's audit database once; finds and saves its failing frame."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self._logs: dict[str, AuditLog] = {}

    def log(self, attempt: AttemptResult) -> AuditLog | None:
        if not attempt.audit_db or not attempt.session_id:
            return None
        path = self.resolve(attempt.audit_db)
        if str(path) not in self._logs:
            if not path.exists():
                return None
            from audit.log import AuditLog

            self._logs[str(path)] = AuditLog.open(path)
        return self._logs[str(path)]

    def resolve(self, audit_db: str) -> Path:
        path = Path(audit_db)
        return path if path.is_absolute() or path.exists() else self.output / path.name

    def steps(self, attempt: AttemptResult) -> list[StepRecord]:
        log = self.log(attempt)
        return log.steps(attempt.session_id) if log is not None else []

    def events(self, attempt: AttemptResult) -> list[EventRecord]:
        log = self.log(attempt)
        return log.events(attempt.session_id) if log is not None else []

    def failing_picture(self, attempt: AttemptResult) -> Image.Image | None:
        """The screen at the failing step, with the step's action drawn on it."""
        from audit.render import draw_marks, marks_for

        log = self.log(attempt)
        if log is None:
            return None
        steps = log.steps(attempt.session_id)
        sha = attempt.frame_sha256
        action = None
        if not sha and steps:
            last = steps[-1]
            sha, action = last.frame_before_sha256 or "", last.action
        if not sha or not log.has_frame(sha):
            return None
        return draw_marks(log.get_frame_image(sha), marks_for(action))

    def save_failing_frame(self, attempt: AttemptResult) -> Path | None:
        """``frames/<session>-<attempt>.png`` under the output, or None without a frame."""
        picture = self.failing_picture(attempt)
        if picture is None:
            return None
        path = self.output / "frames" / f"{attempt.session_id[:12]}-{attempt.attempt}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path)
        return path

    def close(self) -> None:
        for log in self._logs.values():
            with contextlib.suppress(Exception):
                log.close()
        self._logs.clear()
