"""A run's log stays visible to other processes while more logs open and close around it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from audit.log import AuditLog
from audit.records import SessionInfo

COUNT_EVENTS = """
import sys
from pathlib import Path
from audit.log import AuditLog
with AuditLog.open(Path(sys.argv[1])) as log:
    print(len(log.events(sys.argv[2])))
"""


def _events_seen_by_another_process(db: Path, session: str) -> int:
    done = subprocess.run([sys.executable, "-c", COUNT_EVENTS, str(db), session],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_a_second_log_closing_in_the_run_does_not_hide_the_runs_later_writes(
        tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with AuditLog.open(db) as log:
        session = log.start_session(SessionInfo(
            task="t", planner="script", model="", policy_name="default",
            policy_sha256="0" * 64, sandbox_kind="fake", sandbox_image="",
            screen_width=1280, screen_height=800, network=False))
        log.record_event(session, "first", {})
        with AuditLog.open(db):  # an approver or reader in the same process
            pass
        assert _events_seen_by_another_process(db, session) == 1
        log.record_event(session, "second", {})
        # Before the fix the other process's close deleted the WAL the run still
        # wrote to: this one saw a database cut short, or refused its head.
        assert _events_seen_by_another_process(db, session) == 2
