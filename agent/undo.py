"""Checkpoints before risky steps, and undo back to one.

:func:`take_checkpoint` snapshots the desktop's writable files
(:mod:`sandbox.snapshots`: only the files whose bytes the store lacks cross the
channel), stores them content-addressed and deduplicated
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
from typing import Any, Protocol

from audit.checkpoints import (
    ROLLBACK_EVENT,
    Checkpoint,
    CheckpointStore,
    Manifest,
    checkpoint_before,
    record_checkpoint,
    record_rollback,
    record_skipped_checkpoint,
)
from audit.log import AuditLog
from audit.records import EventRecord

# The request's name is re-exported: callers of request_undo look for it here.
from audit.undo_marks import UNDO_REFUSED_EVENT, size_text
from audit.undo_marks import UNDO_REQUEST_EVENT as UNDO_REQUEST_EVENT
from policies.decision import Decision, PolicyContext
from sandbox.base import Sandbox
from sandbox.snapshots import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_FILES,
    DEFAULT_TIMEOUT_S,
    RestoreError,
    SnapshotBounds,
    SnapshotSkipped,
    Transfer,
    restore_tree,
    take_tree,
)

CANNOT_RESTORE = ("Undo restores files only: a running application's memory and open "
                  "windows, and anything already sent over the network, are not undone.")
DEFAULT_ROOTS: tuple[str, ...] = ("~", "/tmp")


class UndoChannel(Protocol):
    """The part of the audit log an undo request travels through (another process may ask)."""

    def record_event(self, session_id: str, kind: str, data: dict[str, Any]) -> None: ...

    def events(self, session_id: str) -> list[EventRecord]: ...


@dataclass(frozen=True, slots=True)
class CheckpointBounds:
    """Where checkpoints look and how big or slow one may be before it is skipped."""

    roots: Sequence[str] = DEFAULT_ROOTS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_files: int = DEFAULT_MAX_FILES
    timeout_s: float = DEFAULT_TIMEOUT_S
    transfer: Transfer = "stream"
    """``check``: the old tar-in-base64 path (the benchmark's baseline)."""

    @property
    def snapshot(self) -> SnapshotBounds:
        return SnapshotBounds(self.max_bytes, self.max_files, self.timeout_s)


@dataclass(frozen=True, slots=True)
class UndoOutcome:
    """What an undo did.  ``restored`` false: nothing was changed (``message`` says why),
    unless ``failed``: the restore broke off part way and some files may be back."""

    restored: bool
    message: str
    failed: bool = False


def take_checkpoint(sandbox: Sandbox, log: AuditLog, session_id: str, step: int,
                    bounds: CheckpointBounds = CheckpointBounds()) -> bool:
    """Checkpoint the files before ``step``; false (and recorded as skipped) over a bound."""
    tree = take_tree(sandbox, bounds.roots, CheckpointStore.beside(log), bounds.snapshot,
                     transfer=bounds.transfer)
    if isinstance(tree, SnapshotSkipped):
        record_skipped_checkpoint(log, session_id, step, tree.why)
        return False
    record_checkpoint(log, session_id, step, Manifest.of_tree(tree), tree)
    return True


def undo(sandbox: Sandbox, log: AuditLog, session_id: str, to_step: int,
         bounds: CheckpointBounds = CheckpointBounds()) -> UndoOutcome:
    """Restore the files to the checkpoint taken right before ``to_step``."""
    checkpoint = checkpoint_before(log, session_id, to_step)
    if checkpoint is None or checkpoint.manifest is None:
        return UndoOutcome(False, f"{nothing_to_undo(checkpoint, to_step)}; nothing was changed")
    try:
        restore_tree(sandbox, bounds.roots, checkpoint.manifest.tree_entries(),
                     CheckpointStore.beside(log), timeout_s=bounds.timeout_s * 2,
                     transfer=bounds.transfer)
    except (RestoreError, ValueError) as exc:  # ValueError: a stored blob lost its bytes
        message = f"undo to before step {to_step} failed: {exc}"
        log.record_event(session_id, "undo_failed", {"to_step": to_step, "why": message})
        return UndoOutcome(False, message, failed=True)
    record_rollback(log, session_id, to_step, checkpoint.manifest)
    count = checkpoint.manifest.file_count
    return UndoOutcome(True, f"Undone: the desktop's files ({count}) were put back as they "
                             f"were before step {to_step}. {CANNOT_RESTORE}")


def nothing_to_undo(checkpoint: Checkpoint | None, to_step: int) -> str:
    """Why undoing to ``to_step`` cannot change anything, given its checkpoint (None or
    skipped); the caller says what that means ("nothing was changed", "nothing to undo")."""
    if checkpoint is None:
        return f"step {to_step} has no checkpoint"
    return f"the checkpoint before step {to_step} was skipped ({checkpoint.skipped})"


def restore_summary(manifest: Manifest, to_step: int, places: int = 5) -> str:
    """What undoing to ``to_step`` puts back, for a confirmation: the count and bytes of the
    files, the places holding most of them, and that files made since are removed."""
    by_place: dict[str, list[int]] = {}
    for path, entry in manifest.files.items():
        if entry.kind == "d":  # folders come back with their files; they are not counted
            continue
        tally = by_place.setdefault(_place(path), [0, 0])
        tally[0] += 1
        tally[1] += entry.size
    biggest = sorted(by_place.items(), key=lambda item: (-item[1][1], item[0]))
    shown = [f"{place} ({count} file{'s' * (count != 1)}, {size_text(size)})"
             for place, (count, size) in biggest[:places]]
    if len(biggest) > places:
        shown.append(f"{len(biggest) - places} more places")
    count = manifest.file_count
    return (f"Puts {count} file{'s' * (count != 1)} ({size_text(manifest.size)}) back as they were "
            f"right before step {to_step}: {', '.join(shown) or 'no files'}; files made "
            "since are removed.")


def _place(path: str) -> str:
    """``home/user/work/a.txt`` -> ``~/work``; ``tmp/x/y`` -> ``/tmp/x``; a file at the top of
    the home -> ``~``."""
    parts = path.split("/")
    if parts[0] == "home" and len(parts) > 3:
        return "~/" + parts[2]
    if parts[0] == "home":
        return "~"
    return "/" + "/".join(parts[:2]) if len(parts) > 2 else "/" + parts[0]


def wants_checkpoint(decision: Decision, approved: bool, context: PolicyContext) -> bool:
    """Checkpoint before a step a rule marks ``checkpoint: true``, a step a human approved,
    and a step that submits a command line to a shell."""
    return decision.checkpoint or approved or context.submitted_line is not None


def request_undo(log: UndoChannel, session_id: str, to_step: int) -> None:
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
            if not outcome.restored and not outcome.failed:  # a failure is recorded already
                self.log.record_event(session_id, UNDO_REFUSED_EVENT, {
                    "request": event.id, "why": outcome.message})
            notices.append(outcome.message)
        return notices


def answer_to(log: UndoChannel, session_id: str, request_after: int) -> str | None:
    """The answer to an undo request recorded after event ``request_after``, if any yet."""
    for event in log.events(session_id):
        if event.id <= request_after:
            continue
        if event.kind == ROLLBACK_EVENT:
            return (f"Undone to before step {event.data['to_step']} "
                    f"({event.data['files']} files). {CANNOT_RESTORE}")
        if event.kind in (UNDO_REFUSED_EVENT, "undo_failed"):
            return str(event.data["why"])
    return None
