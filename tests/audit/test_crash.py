"""SIGKILL a run at random points: the log must stay whole, verifiable and complete."""

from __future__ import annotations

import os
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

RUNNER = Path(__file__).with_name("crash_runner.py")
KILLS = 30


def _run_and_kill(db_path: Path, markers: Path, rng: random.Random, seed: int) -> None:
    with subprocess.Popen([sys.executable, str(RUNNER), str(db_path), str(markers), str(seed)],
                          stdout=subprocess.PIPE, text=True) as runner:
        assert runner.stdout is not None
        if rng.random() < 0.25:  # sometimes during start-up, open, migration or recovery
            time.sleep(rng.uniform(0.0, 0.6))
        else:
            assert runner.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.0, 0.4))
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()


def _check_after_kill(db_path: Path, markers: Path) -> None:
    if not db_path.exists():
        return  # killed before the file was created
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    AuditLog.open(db_path).close()  # marks the dead run interrupted
    report = verify(db_path)
    assert report.ok, report.summary()
    with sqlite3.connect(db_path) as conn:
        statuses = dict(conn.execute("SELECT id, status FROM steps").fetchall())
        open_sessions = conn.execute("SELECT count(*) FROM sessions WHERE ended_at IS NULL")
        assert open_sessions.fetchone()[0] == 0
    executed = [int(marker.name) for marker in markers.iterdir()]
    unlogged = [step_id for step_id in executed if step_id not in statuses]
    assert not unlogged, f"actions ran without a committed step: {unlogged}"
    assert all(status in {"done", "interrupted"} for status in statuses.values())


@pytest.mark.slow
def test_sigkill_at_random_points_never_loses_or_corrupts_a_step(tmp_path: Path) -> None:
    db_path, markers = tmp_path / "audit.db", tmp_path / "markers"
    markers.mkdir()
    rng = random.Random(20261128)
    for kill in range(KILLS):
        _run_and_kill(db_path, markers, rng, seed=kill)
        _check_after_kill(db_path, markers)
    with sqlite3.connect(db_path) as conn:
        steps = conn.execute("SELECT count(*) FROM steps").fetchone()[0]
        interrupted = conn.execute(
            "SELECT count(*) FROM sessions WHERE outcome = 'interrupted'").fetchone()[0]
    assert steps > KILLS
    assert interrupted >= KILLS // 2
