"""`deskhand run` flags: bad combinations are refused with a reason, before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "terminal-note.yaml"


def deskhand(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "run", "--db", str(tmp_path / "audit.db"),
         "--no-perception", *args],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180,
        env={**os.environ, "DESKHAND_HOME": str(tmp_path)},
    )


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--script", str(DEMO), "--sandbox", "local", "--network"],
         "--network is only for the docker sandbox"),
        (["--script", str(DEMO), "--sandbox", "fake", "--screen", "10x10"], "out of range"),
        (["--script", str(DEMO), "--sandbox", "fake", "--screen", "big"], "1280x800"),
        (["a task", "--planner", "teleport", "--sandbox", "fake"], "planner"),
        (["a task", "--sandbox", "fake"], "--planner script needs --script FILE"),
        (["--script", str(DEMO), "--sandbox", "fake", "--policy", "nonexistent-profile"],
         "nonexistent-profile"),
        (["--script", str(DEMO), "--sandbox", "fake", "--elements", "all"],
         "--elements 'all': choose one of off, text, marks"),
        (["--script", str(DEMO), "--sandbox", "fake", "--elements", "text"],
         "--elements text reads the screen: drop --no-perception"),
    ],
)
def test_bad_flags_exit_2_with_the_reason(tmp_path: Path, args: list[str], reason: str) -> None:
    proc = deskhand(tmp_path, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert reason in proc.stdout + proc.stderr


def test_a_run_that_ends_on_its_step_budget_exits_1(tmp_path: Path) -> None:
    proc = deskhand(tmp_path, "--script", str(DEMO), "--sandbox", "fake", "--max-steps", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "stopped after 2 turns" in proc.stdout


@pytest.mark.docker
def test_watch_prints_how_to_connect_a_vnc_viewer(tmp_path: Path) -> None:
    proc = deskhand(tmp_path, "--script", str(DEMO), "--sandbox", "docker", "--watch")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "watch over VNC (view-only): vncviewer 127.0.0.1::" in proc.stdout
    assert "password: " in proc.stdout
