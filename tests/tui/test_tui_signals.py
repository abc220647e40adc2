"""SIGTERM and SIGHUP stop `deskhand tui` as Ctrl-Q does and exit 130; the attached
approver is gone from the database afterwards.  Driven through a real pty."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pexpect
import pytest

from audit.log import AuditLog
from audit.presence import ApproverPresence


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_quits_the_attached_tui_with_130(tmp_path: Path, signum: int) -> None:
    db = tmp_path / "audit.db"
    child = pexpect.spawn(sys.executable, ["-m", "agent", "tui", "--attach", "--db", str(db),
                                           "--graphics", "halfblock"],
                          env={**os.environ, "DESKHAND_HOME": str(tmp_path),
                               "TERM": "xterm-256color"},
                          encoding="utf-8", timeout=60, dimensions=(40, 120))
    child.expect("attached to")
    assert ApproverPresence(db).anyone_attached()
    child.kill(signum)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130, (child.signalstatus, child.before)
    assert not ApproverPresence(db).anyone_attached()


ASKING_SCRIPT = """\
task: try something destructive
steps:
  - screenshot
  - type: "rm -rf ~/keep\\n"
"""


def test_sigterm_while_a_tui_run_waits_closes_its_session_naming_the_signal(
        tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    script = tmp_path / "asks.yaml"
    script.write_text(ASKING_SCRIPT, encoding="utf-8")
    child = pexpect.spawn(sys.executable, ["-m", "agent", "tui", "--db", str(db), "--script",
                                           str(script), "--sandbox", "fake", "--graphics",
                                           "halfblock"],
                          env={**os.environ, "DESKHAND_HOME": str(tmp_path),
                               "TERM": "xterm-256color"},
                          encoding="utf-8", timeout=60, dimensions=(48, 160))
    child.expect("Start")
    child.send("\x13")  # ctrl+s starts the run
    child.expect("approval needed")
    child.kill(signal.SIGTERM)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130, (child.signalstatus, child.before)
    with AuditLog.open(db) as log:
        [session] = log.list_sessions()
        statuses = [s.status for s in log.steps(session.id)]
        approvals = log.approvals(session.id)
    assert session.outcome == "interrupted"
    assert "SIGTERM" in (session.reason or "")
    assert "pending" not in statuses
    assert [a.status for a in approvals] == ["denied"]
