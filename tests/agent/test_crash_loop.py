"""SIGKILL the real loop at random points: the log stays consistent and every
action that reached the sandbox has a committed step."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audit.log import AuditLog
from audit.verify import verify

RUNNER = Path(__file__).with_name("crash_loop_runner.py")
ROOT = Path(__file__).resolve().parents[2]
KILLS = 30

pytestmark = pytest.mark.slow


def _run_and_kill(db: Path, markers: Path, after_actions: int) -> None:
    """Start a run, wait until its session is committed and ``after_actions`` actions
    reached the sandbox, then kill it wherever it is."""
    proc = subprocess.Popen([sys.executable, str(RUNNER), str(db), str(markers)],
                            stdout=subprocess.PIPE, cwd=ROOT, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    _wait_for_markers(markers, after_actions, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()


def _wait_for_markers(markers: Path, count: int, proc: subprocess.Popen[str]) -> None:
    give_up = time.monotonic() + 60
    while sum(1 for _ in markers.iterdir()) < count:
        assert proc.poll() is None, "the run died on its own"
        assert time.monotonic() < give_up, f"fewer than {count} actions in 60 s"
        time.sleep(0.001)  # polling a state, not waiting for one to happen by chance


def _typed_steps(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT action FROM steps WHERE action_type = 'type'").fetchall()
    return {json.loads(action)["text"] for (action,) in rows}


def test_sigkill_of_the_real_loop_never_loses_a_step_that_ran(tmp_path: Path) -> None:
    db, markers = tmp_path / "audit.db", tmp_path / "markers"
    markers.mkdir()
    rng = random.Random(1128)
    for _ in range(KILLS):
        _run_and_kill(db, markers, rng.randint(0, 12))
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        with AuditLog.open(db):  # marks the dead run's pending steps interrupted
            pass
        report = verify(db)
        assert report.ok, report.summary()
        reached = {marker.name for marker in markers.iterdir()}
        assert reached <= _typed_steps(db), "an action ran without a committed step"
        for marker in markers.iterdir():
            marker.unlink()
    with sqlite3.connect(db) as conn:
        sessions = conn.execute("SELECT count(*), sum(outcome = 'interrupted') "
                                "FROM sessions").fetchone()
    assert sessions == (KILLS, KILLS)
    assert len(_typed_steps(db)) > KILLS, "the runs were killed mid-work, not before it"
