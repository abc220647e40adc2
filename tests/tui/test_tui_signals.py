"""SIGTERM and SIGHUP stop `deskhand tui` as Ctrl-Q does and exit 130; the attached
approver is gone from the database afterwards.  Driven through a real pty."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pexpect
import pytest

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
