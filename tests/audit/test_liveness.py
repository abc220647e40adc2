"""Runs that died are closed as interrupted at the next open; living runs are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from audit.log import INTERRUPTED_STEP, AuditLog
from audit.verify import verify

HOLD_A_STEP_OPEN = """
import sys
from pathlib import Path
from audit.log import AuditLog
from audit.synthetic import session_info
from sandbox.actions import Wait
log = AuditLog.open(Path(sys.argv[1]))
session_id = log.start_session(session_info("a run in another process"))
step_id = log.record_intent(session_id, index=0, action=Wait(seconds=1),
                            proposed_raw=None, validation_error=None, decision=None,
                            frame_before_sha256=None, secret=False)
print(session_id, step_id, flush=True)
sys.stdin.read()
"""


def test_a_living_run_is_left_alone_and_a_dead_one_is_interrupted(db_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", HOLD_A_STEP_OPEN, str(db_path)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as runner:
        assert runner.stdout is not None
        session_id, step_id = runner.stdout.readline().split()
        try:
            with AuditLog.open(db_path) as log:
                assert log.get_session(session_id).ended_at is None
                assert log.steps(session_id)[0].status == "pending"
        finally:
            os.kill(runner.pid, signal.SIGKILL)
    with AuditLog.open(db_path) as log:
        session = log.get_session(session_id)
        [step] = log.steps(session_id)
    assert (session.outcome, step.status, step.error) == ("interrupted", "interrupted",
                                                          INTERRUPTED_STEP)
    assert step.id == int(step_id)
    assert verify(db_path).ok
