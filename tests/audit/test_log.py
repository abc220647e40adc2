"""Writing and reading the audit log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from PIL import ImageChops

from audit import synthetic
from audit.errors import AmbiguousId, AuditStateError, NotFound
from audit.frames import open_png
from audit.log import AuditLog
from audit.verify import verify
from policies.decision import Decision, TargetElement
from sandbox.actions import Click

ALLOW = Decision(effect="allow", rule_ids=("gui.allow",), reason="ordinary",
                 policy_sha256="ab" * 32)
DENY = Decision(effect="deny", rule_ids=("shell.rm",), reason="deletes files",
                policy_sha256="ab" * 32)


def _intent(log: AuditLog, session_id: str, index: int, **overrides: object) -> int:
    arguments: dict[str, object] = {
        "index": index, "action": Click(x=5, y=6), "proposed_raw": None,
        "validation_error": None, "decision": ALLOW, "frame_before_sha256": None,
        "secret": False,
    }
    arguments.update(overrides)
    return log.record_intent(session_id, **arguments)  # type: ignore[arg-type]


def _status(db_path: Path, step_id: int) -> str:
    with sqlite3.connect(db_path) as conn:
        return str(conn.execute("SELECT status FROM steps WHERE id = ?", (step_id,)).fetchone()[0])


def test_intent_is_committed_pending_before_the_result(log: AuditLog, db_path: Path) -> None:
    session_id = log.start_session(synthetic.session_info())
    step_id = _intent(log, session_id, 0)
    assert _status(db_path, step_id) == "pending"  # seen by another connection: committed
    log.record_result(step_id, status="done", output={"cursor": [1, 2]}, error=None,
                      frame_after_sha256=None, timings_ms={"execute_ms": 3.5})
    assert _status(db_path, step_id) == "done"
    [step] = log.steps(session_id)
    assert (step.output, step.timings_ms, step.decision_effect) == (
        {"cursor": [1, 2]}, {"execute_ms": 3.5}, "allow")


def test_a_clicks_target_element_is_in_its_step_record_and_the_chain(log: AuditLog,
                                                                     db_path: Path) -> None:
    session_id = log.start_session(synthetic.session_info())
    target = TargetElement(role="push button", name="Delete", box=(600, 380, 680, 420),
                           source="a11y")
    aimed = _intent(log, session_id, 0, target_element=target)
    bare = _intent(log, session_id, 1)
    steps = {step.id: step for step in log.steps(session_id)}
    assert steps[aimed].target_element == target
    assert steps[bare].target_element is None
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE steps SET target_element = ? WHERE id = ?",
                     ('{"role":"push button","name":"Cancel"}', aimed))
    report = verify(db_path)
    assert not report.ok, "the target is chained: rewriting it breaks verification"


def test_steps_that_never_run_are_final_at_once(log: AuditLog) -> None:
    session_id = log.start_session(synthetic.session_info())
    invalid = _intent(log, session_id, 0, action=None, decision=None,
                      validation_error="invalid action: x: too big")
    denied = _intent(log, session_id, 1, decision=DENY)
    statuses = {step.id: step.status for step in log.steps(session_id)}
    assert statuses == {invalid: "invalid", denied: "denied"}
    with pytest.raises(AuditStateError, match="not pending"):
        log.record_result(denied, status="done", output={}, error=None, frame_after_sha256=None,
                          timings_ms={})


def test_a_result_cannot_be_recorded_twice(log: AuditLog) -> None:
    step_id = _intent(log, log.start_session(synthetic.session_info()), 0)
    log.record_result(step_id, status="error", output={}, error="boom", frame_after_sha256=None,
                      timings_ms={})
    with pytest.raises(AuditStateError):
        log.record_result(step_id, status="done", output={}, error=None,
                          frame_after_sha256=None, timings_ms={})


def test_ending_a_session_closes_what_is_still_open_and_the_chain_verifies(
        log: AuditLog, db_path: Path) -> None:
    session_id = log.start_session(synthetic.session_info())
    done = _intent(log, session_id, 0)
    log.record_result(done, status="done", output={}, error=None, frame_after_sha256=None,
                      timings_ms={})
    left_open = _intent(log, session_id, 1)  # a stop landed before its id came back
    asked = log.request_approval(left_open, frame_sha256="", summary="click", rule_ids=["r"],
                                 reason="risky", timeout_s=60)
    log.end_session(session_id, outcome="interrupted", reason="interrupted by SIGTERM")
    steps = {step.id: step for step in log.steps(session_id)}
    assert (steps[done].status, steps[left_open].status) == ("done", "interrupted")
    assert steps[left_open].error == ("the session ended before this step finished "
                                      "(interrupted by SIGTERM)")
    assert steps[left_open].finished_at is not None
    assert log.approval(asked).status == "expired"
    assert log.pending_approvals(session_id) == []
    assert verify(db_path).ok


def test_a_recorded_session_reads_back_in_order_and_verifies(recorded: tuple[Path, str]) -> None:
    db_path, session_id = recorded
    with AuditLog.open(db_path) as log:
        session = log.get_session(session_id[:8])
        steps = log.steps(session_id)
        approvals = log.approvals(session_id)
    assert (session.outcome, session.step_count, session.task) == (
        "done", 12, "write ten notes in the editor")
    assert [s.index for s in steps] == list(range(12))
    assert all(s.status == "done" and s.usage and s.usage["input_tokens"] == 1200 for s in steps)
    assert [s.index for s in steps if s.approval is not None] == [6]
    assert approvals[0].answer is not None
    assert approvals[0].answer.approver == "ana@tty"
    assert verify(db_path, deep=True).ok


def test_frames_are_stored_once_and_decode_to_the_same_pixels(log: AuditLog,
                                                             db_path: Path) -> None:
    frames = list(synthetic.frames(6))
    for frame in [*frames, frames[2], frames[2]]:
        assert log.put_frame(frame) == frame.sha256
    with sqlite3.connect(db_path) as conn:
        codecs = [row[0] for row in conn.execute("SELECT codec FROM blobs ORDER BY rowid")]
    assert codecs == ["png"] + ["tiles"] * 5
    assert log.get_frame_png(frames[0].sha256) == frames[0].png  # keyframes: byte for byte
    for frame in frames:
        decoded = open_png(log.get_frame_png(frame.sha256))
        assert ImageChops.difference(decoded, open_png(frame.png)).getbbox() is None


def test_a_frame_of_another_size_starts_a_new_keyframe(log: AuditLog, db_path: Path) -> None:
    log.put_frame(synthetic.frame(1))
    small = synthetic.frame(1, 320, 200)
    log.put_frame(small)
    assert log.get_frame_image(small.sha256).size == (320, 200)
    with sqlite3.connect(db_path) as conn:
        assert [r[0] for r in conn.execute("SELECT codec FROM blobs")] == ["png", "png"]


def test_sessions_filter_by_outcome_text_and_time(log: AuditLog) -> None:
    done = synthetic.record_session(log, 1, task="rename the report")
    failed = synthetic.record_session(log, 1, task="book a flight", outcome="failed")
    assert [s.id for s in log.list_sessions(outcome="failed")] == [failed]
    assert [s.id for s in log.list_sessions(text="report")] == [done]
    started = log.get_session(failed).started_at
    assert [s.id for s in log.list_sessions(since=started)] == [failed]
    assert [s.id for s in log.list_sessions(until=started)] == [done]
    assert [s.id for s in log.list_sessions(limit=1)] == [failed]


def test_session_prefixes_must_be_unique(log: AuditLog) -> None:
    ids = [log.start_session(synthetic.session_info()) for _ in range(20)]
    with pytest.raises(AmbiguousId):
        log.get_session(_shared_prefix(ids))
    with pytest.raises(NotFound):
        log.get_session("zz")


def _shared_prefix(ids: list[str]) -> str:
    by_first: dict[str, list[str]] = {}
    for session_id in ids:
        by_first.setdefault(session_id[0], []).append(session_id)
    return next(first for first, group in by_first.items() if len(group) > 1)


def test_events_keep_their_data(log: AuditLog) -> None:
    session_id = log.start_session(synthetic.session_info())
    log.record_event(session_id, "planner_turn", {"message": "thinking", "usage": {"cost": 0.1}})
    [event] = log.events(session_id)
    assert (event.kind, event.data) == ("planner_turn", {"message": "thinking",
                                                         "usage": {"cost": 0.1}})


def test_writes_after_close_are_refused(db_path: Path) -> None:
    log = AuditLog.open(db_path)
    session_id = log.start_session(synthetic.session_info())
    log.close()
    with pytest.raises(AuditStateError, match="closed"):
        log.record_event(session_id, "late", {})


def test_the_journal_is_wal_and_commits_are_synchronous(log: AuditLog, db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with log._engine.connect() as conn:  # the setting is per connection: ask the log's own
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
