"""A recorded session with checkpoints, a skipped checkpoint, a rollback and a refused undo,
written in the order a run writes them (agent/undo.py serves an undo before the step it
precedes runs, then checkpoints that step)."""

from __future__ import annotations

import hashlib

from agent.undo import request_undo
from audit import synthetic
from audit.checkpoints import (
    FileEntry,
    Manifest,
    record_checkpoint,
    record_rollback,
    record_skipped_checkpoint,
)
from audit.log import AuditLog
from audit.undo_marks import UNDO_REFUSED_EVENT
from policies.decision import Decision
from sandbox.fake import FakeSandbox
from sandbox.snapshots import Tree

STEPS = 5
CHECKPOINTED = 1  # taken before step 1, undone before step 3 ran
SKIPPED = 2
UNDONE_BEFORE = 3
REFUSED_BEFORE = 4  # an undo of step 0 (no checkpoint) asked before step 4


def work_manifest() -> Manifest:
    files = {f"home/user/work/note-{n}.txt": FileEntry(hashlib.sha256(bytes([n])).hexdigest(),
                                                       size=4000 + n, mode=0o644)
             for n in range(3)}
    files["tmp/scratch.bin"] = FileEntry("ab" * 32, size=1_500_000, mode=0o600)
    return Manifest(files, new_bytes=1_512_003)


def record_undo_session(log: AuditLog, *, end: bool = True) -> str:
    """Five steps; the session ends ``done`` unless ``end`` is false (a live run)."""
    session_id = log.start_session(synthetic.session_info("clean up ~/work"))
    manifest = work_manifest()
    # The fake desktop's frames are the same in every process (snapshots compare them).
    with FakeSandbox() as box:
        before = log.put_frame(box.screenshot())
        for index in range(STEPS):
            after = _record_step(log, session_id, index, before, box, manifest)
            before = after
    if end:
        log.end_session(session_id, outcome="done", reason="finished")
    return session_id


def _record_step(log: AuditLog, session_id: str, index: int, before: str, box: FakeSandbox,
                 manifest: Manifest) -> str:
    decision = Decision(effect="allow", rule_ids=("ui.allow",), reason="ordinary work",
                        policy_sha256="5e" * 32)
    action = synthetic.action_for(index)
    step_id = log.record_intent(session_id, index=index, action=action, proposed_raw=None,
                                validation_error=None, decision=decision,
                                frame_before_sha256=before, secret=False)
    _before_execute(log, session_id, index, manifest)
    after = log.put_frame(box.execute(action).frame)
    log.record_result(step_id, status="done", output={}, error=None,
                      frame_after_sha256=after, timings_ms={"total_ms": 20.0})
    return after


def _before_execute(log: AuditLog, session_id: str, index: int, manifest: Manifest) -> None:
    if index == UNDONE_BEFORE:
        request_undo(log, session_id, CHECKPOINTED)
        record_rollback(log, session_id, CHECKPOINTED, manifest)
    if index == REFUSED_BEFORE:
        request_undo(log, session_id, 0)
        (request,) = [e for e in log.events(session_id) if e.kind == "undo_request"][-1:]
        log.record_event(session_id, UNDO_REFUSED_EVENT, {
            "request": request.id, "why": "step 0 has no checkpoint; nothing was changed"})
    if index == CHECKPOINTED:
        record_checkpoint(log, session_id, index, manifest,
                          Tree({}, manifest.new_bytes, seconds=0.42, transfer="stream"))
    if index == SKIPPED:
        record_skipped_checkpoint(log, session_id, index, "reading it out took over 30 s")
