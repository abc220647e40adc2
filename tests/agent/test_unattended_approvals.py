"""A `deskhand run` without a terminal waits (120 s by default) for an approver attached to
its database, and denies at once, saying so, when nobody is attached; both are recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from agent.approvals import NO_APPROVER
from audit.log import AuditLog
from audit.presence import ApproverPresence

ASKING_SCRIPT = """\
task: try something destructive
steps:
  - screenshot
  - type: "rm -rf ~/keep\\n"
"""


def start_run(tmp_path: Path, db: Path) -> subprocess.Popen[str]:
    script = tmp_path / "asks.yaml"
    script.write_text(ASKING_SCRIPT, encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--script", str(script), "--sandbox", "fake",
         "--db", str(db), "--no-perception"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "DESKHAND_HOME": str(tmp_path), "COLUMNS": "200"})


def test_with_nobody_attached_the_step_is_denied_at_once(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    started = time.monotonic()
    with start_run(tmp_path, db) as proc:
        output, _ = proc.communicate(timeout=60)
    assert time.monotonic() - started < 30, "waited out the 120 s timeout"
    assert proc.returncode == 0, output
    assert "no approver attached: denied" in output
    with AuditLog.open(db) as log:
        [session] = log.list_sessions()
        steps = log.steps(session.id)
        [approval] = log.approvals(session.id)
    assert [s.status for s in steps] == ["done", "denied"]
    assert approval.status == "denied"
    assert approval.answer is not None
    assert approval.answer.approver == NO_APPROVER


def test_an_attached_approver_is_waited_for_and_answers(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with AuditLog.open(db) as log:
        attached = ApproverPresence(db).attach("tester@tui")  # as `deskhand tui --attach` does
        try:
            with start_run(tmp_path, db) as proc:
                request = wait_for_pending_approval(log, proc)
                # Well past the old no-terminal timeout of 0 s: still waiting.
                assert log.approval(request.id).status == "pending"
                assert log.answer_approval(request.id, approved=True, scope="once",
                                           approver="tester@tui", channel="tui-attach")
                output, _ = proc.communicate(timeout=60)
        finally:
            attached.detach()
        [session] = log.list_sessions()
        steps = log.steps(session.id)
    assert proc.returncode == 0, output
    assert "waiting up to 120 s for an attached approver" in output
    assert [s.status for s in steps] == ["done", "done"]


def wait_for_pending_approval(log: AuditLog, proc: subprocess.Popen[str]):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pending = log.pending_approvals()
        if pending:
            return pending[0]
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.05)  # polling the database for a state, not sleeping to synchronise
    raise AssertionError("the run never asked")


def test_when_the_last_approver_leaves_the_waiting_step_is_denied_at_once(
        tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with AuditLog.open(db) as log:
        attached = ApproverPresence(db).attach("tester@tui")
        try:
            with start_run(tmp_path, db) as proc:
                request = wait_for_pending_approval(log, proc)
                attached.detach()  # the attached TUI was closed
                output, _ = proc.communicate(timeout=30)
        finally:
            attached.detach()
        approval = log.approval(request.id)
    assert proc.returncode == 0, output
    assert "no approver attached: denied" in output
    assert approval.status == "denied"
    assert approval.answer is not None
    assert approval.answer.approver == NO_APPROVER
