"""The walking skeleton end to end on a real desktop: the demo script, the real
policy, the real audit log, the real CLI."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig
from agent.planners.script import ScriptPlanner, load_script
from audit.log import AuditLog
from policies.engine import load_profile
from sandbox.base import Sandbox
from sandbox.local import LocalSandbox

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "terminal-note.yaml"
NOTE = "Grüße aus deskhand — 世界 ñ € ✓"



def _sandbox(kind: str) -> Sandbox:
    if kind == "local":
        return LocalSandbox()
    import docker

    from sandbox.docker import DockerSandbox

    return DockerSandbox(docker.from_env())


@pytest.mark.parametrize("kind", [pytest.param("local", marks=pytest.mark.x11),
                                  pytest.param("docker", marks=pytest.mark.docker)])
def test_demo_writes_the_note_and_the_risky_step_never_runs(kind: str, tmp_path: Path) -> None:
    script = load_script(DEMO)
    with AuditLog.open(tmp_path / "audit.db") as log, _sandbox(kind) as box:
        loop = AgentLoop(sandbox=box, planner=ScriptPlanner(script), policy=load_profile("default"),
                         audit=log, approver=BrokerApprover(log),
                         config=LoopConfig(approval_timeout_s=0))
        summary = loop.run(script.task)
        note = box.check(["sh", "-c", "cat ~/deskhand-note.txt"])
        keep = box.check(["sh", "-c", "test -d ~/keep"])

    assert summary.outcome == "done", summary.reason
    assert note.stdout == NOTE + "\n"
    assert keep.exit_code == 0, "the denied rm -rf ran"
    assert (summary.steps, summary.executed, summary.denied) == (len(script.steps),
                                                                 len(script.steps) - 1, 1)
    rows = _steps(tmp_path / "audit.db")
    assert len(rows) == len(script.steps)
    assert [status for _, status in rows].count("denied") == 1
    assert all(effect in {"allow", "ask", "deny"} for effect, _ in rows)


def _steps(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return [(str(e), str(s)) for e, s in
                conn.execute("SELECT decision_effect, status FROM steps ORDER BY idx")]


@pytest.mark.parametrize("kind", [pytest.param("local", marks=pytest.mark.x11),
                                  pytest.param("docker", marks=pytest.mark.docker)])
def test_cli_runs_the_demo_and_prints_one_line_per_step(kind: str, tmp_path: Path) -> None:
    env = {**os.environ, "DESKHAND_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "run", "--script", str(DEMO), "--sandbox", kind,
         "--db", str(tmp_path / "cli.db")],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    step_lines = [line for line in proc.stdout.splitlines() if line.lstrip().startswith("#")]
    assert len(step_lines) == len(load_script(DEMO).steps)
    assert any("rm -rf" in line and "ask" in line and "denied" in line for line in step_lines)
    assert "done:" in proc.stdout
