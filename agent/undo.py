"""Checkpoints before risky steps, and undo back to one.

:func:`take_checkpoint` snapshots the desktop's writable files
(:mod:`sandbox.snapshots`), stores them content-addressed and deduplicated
(:mod:`audit.checkpoints`) and records the checkpoint, or why it was skipped,
in the session's audit chain.  :func:`undo` puts the files back as they were
right before a step, records the rollback, and returns the message the
planner is told in its next observation.

What undo cannot restore is said in :data:`CANNOT_RESTORE` (shown in every
confirmation): a running application's memory and windows, and anything that
already left the desktop over the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from audit.checkpoints import (
    ROLLBACK_EVENT,
    CheckpointStore,
    checkpoint_before,
    record_checkpoint,
    record_rollback,
    record_skipped_checkpoint,
)
from audit.log import AuditLog
from policies.decision import Decision, PolicyContext
from sandbox.base import Sandbox
from sandbox.snapshots import DEFAULT_ROOTS, SnapshotSkipped, restore_snapshot, take_snapshot

CANNOT_RESTORE = ("Undo restores files only: a running application's memory and open "
                  "windows, and anything already sent over the network, are not undone.")
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_TIMEOUT_S = 30.0
UNDO_REQUEST_EVENT = "undo_request"


@dataclass(frozen=True, slots=True)
class CheckpointBounds:
    """Where checkpoints look and how big or slow one may be before it is skipped."""

    roots: Sequence[str] = DEFAULT_ROOTS
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class UndoOutcome:
    """What an undo did: ``restored`` false means nothing was changed, and ``message`` why."""

    restored: bool
    message: str


def take_checkpoint(sandbox: Sandbox, log: AuditLog, session_id: str, step: int,
                    bounds: CheckpointBounds = CheckpointBounds()) -> bool:
    """Checkpoint the files before ``step``; false (and recorded as skipped) over a bound."""
    snapshot = take_snapshot(sandbox, bounds.roots, max_bytes=bounds.max_bytes,
                             timeout_s=bounds.timeout_s)
    if isinstance(snapshot, SnapshotSkipped):
        record_skipped_checkpoint(log, session_id, step, snapshot.why)
        return False
    manifest = CheckpointStore.beside(log).save(snapshot.tar_gz)
    record_checkpoint(log, session_id, step, manifest, snapshot.seconds)
    return True


def undo(sandbox: Sandbox, log: AuditLog, session_id: str, to_step: int,
         bounds: CheckpointBounds = CheckpointBounds()) -> UndoOutcome:
    """Restore the files to the checkpoint taken right before ``to_step``."""
    checkpoint = checkpoint_before(log, session_id, to_step)
    if checkpoint is None:
        return UndoOutcome(False, f"step {to_step} has no checkpoint; nothing was changed")
    if checkpoint.manifest is None:
        return UndoOutcome(False, f"the checkpoint before step {to_step} was skipped "
                                  f"({checkpoint.skipped}); nothing was changed")
    tar_gz = CheckpointStore.beside(log).tar_gz(checkpoint.manifest)
    restore_snapshot(sandbox, tar_gz, bounds.roots, timeout_s=bounds.timeout_s * 2)
    record_rollback(log, session_id, to_step, checkpoint.manifest)
    count = len(checkpoint.manifest.files)
    return UndoOutcome(True, f"Undone: the desktop's files ({count}) were put back as they "
                             f"were before step {to_step}. {CANNOT_RESTORE}")


def wants_checkpoint(decision: Decision, approved: bool, context: PolicyContext) -> bool:
    """Checkpoint before a step a rule marks ``checkpoint: true``, a step a human approved,
    and a step that submits a command line to a shell."""
    return decision.checkpoint or approved or context.submitted_line is not None


def request_undo(log: AuditLog, session_id: str, to_step: int) -> None:
    """Ask the run that owns ``session_id`` to undo back to ``to_step`` (``deskhand undo``);
    it serves the request before its next step, like an approval."""
    log.record_event(session_id, UNDO_REQUEST_EVENT, {"to_step": to_step})


class StepCheckpoints:
    """The loop's ``before_execute`` hook: serves undo requests, then checkpoints the step.

    Undo requests are ``undo_request`` events another process wrote into the
    audit database; each is answered once, by a ``rollback`` event or by an
    ``undo_refused`` event saying why nothing was changed.
    """

    def __init__(self, sandbox: Sandbox, log: AuditLog,
                 bounds: CheckpointBounds = CheckpointBounds()) -> None:
        self.sandbox = sandbox
        self.log = log
        self.bounds = bounds
        self._served: set[int] = set()

    def __call__(self, session_id: str, step: int, decision: Decision, approved: bool,
                 context: PolicyContext) -> str:
        notices = self.serve_requests(session_id)
        if wants_checkpoint(decision, approved, context):
            take_checkpoint(self.sandbox, self.log, session_id, step, self.bounds)
        return " ".join(notices)

    def serve_requests(self, session_id: str) -> list[str]:
        """Undo every request not served yet; the notices the planner is told."""
        notices = []
        for event in self.log.events(session_id):
            if event.kind != UNDO_REQUEST_EVENT or event.id in self._served:
                continue
            self._served.add(event.id)
            outcome = undo(self.sandbox, self.log, session_id, int(event.data["to_step"]),
                           self.bounds)
            if not outcome.restored:
                self.log.record_event(session_id, "undo_refused", {
                    "request": event.id, "why": outcome.message})
            notices.append(outcome.message)
        return notices


def answer_to(log: AuditLog, session_id: str, request_after: int) -> str | None:
    """The answer to an undo request recorded after event ``request_after``, if any yet."""
    for event in log.events(session_id):
        if event.id <= request_after:
            continue
        if event.kind == ROLLBACK_EVENT:
            return (f"Undone to before step {event.data['to_step']} "
                    f"({event.data['files']} files). {CANNOT_RESTORE}")
        if event.kind == "undo_refused":
            return str(event.data["why"])
    return None
