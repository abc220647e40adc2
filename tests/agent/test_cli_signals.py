"""Ctrl-C during a run: the session is closed as interrupted, the exit code says so,
and the sandbox's processes are gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audit.log import AuditLog

pytestmark = pytest.mark.x11

ROOT = Path(__file__).resolve().parents[2]


def test_ctrl_c_interrupts_the_run_and_closes_its_session(tmp_path: Path) -> None:
    script = tmp_path / "slow.yaml"
    script.write_text("task: wait a long time\nsteps:\n  - screenshot\n  - wait: 25\n",
                      encoding="utf-8")
    db = tmp_path / "audit.db"
    desktops_before = _desktop_processes()
    with subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--script", str(script), "--sandbox", "local",
         "--db", str(db), "--no-perception"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "DESKHAND_HOME": str(tmp_path)}, start_new_session=True,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "#0" in line:  # the screenshot ran; the wait is under way
                break
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        output = proc.stdout.read()
        assert proc.wait(timeout=30) == 130, output
    with AuditLog.open(db) as log:
        [session] = log.list_sessions()
    assert session.outcome == "interrupted"
    assert _desktop_processes() <= desktops_before, "sandbox processes outlived the run"


def _desktop_processes() -> set[str]:
    """PIDs of running sandbox desktops of this checkout (their session script, Xvfb under
    it); other checkouts on a shared machine run their own."""
    found = subprocess.run(["pgrep", "-f", f"{ROOT}/sandbox/desktop/session.py"],
                           capture_output=True, text=True)
    return set(found.stdout.split())
