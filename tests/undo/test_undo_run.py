"""The whole story in a real run in the container: a human approves `rm -rf ~/work`, the run
checkpoints first, `deskhand undo` on the live session puts every file back byte for byte,
the audit chain still verifies and the replay shows the checkpoint and the rollback."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import docker
from rich.console import Console

from agent.runs import RunOptions, RunServices, open_run, plan_run
from agent.settings import Settings
from audit.checkpoints import CHECKPOINT_EVENT, ROLLBACK_EVENT
from audit.log import AuditLog
from audit.replay import TerminalReplay
from audit.verify import verify
from sandbox.base import Sandbox
from sandbox.docker import DockerSandbox, DockerSandboxConfig

MAKE_WORK = r"""
import os
w = os.path.expanduser("~/work")
os.makedirs(w + "/deep", exist_ok=True)
open(w + "/notes.txt", "w").write("keep me\n" * 100)
open(w + "/deep/blob.bin", "wb").write(os.urandom(100_000))
"""
HASHES = r"""
import hashlib, os
for t, _, ns in sorted(os.walk(os.path.expanduser("~/work"))):
    for n in sorted(ns):
        print(os.path.join(t, n), hashlib.sha256(open(os.path.join(t, n), "rb").read()).hexdigest())
"""
SCRIPT = """task: clean up ~/work
steps:
  - key: ctrl+alt+t
  - wait: 2
  - type: "rm -rf ~/work\\n"
""" + "".join("  - wait: 1\n" for _ in range(40))


def _approve_everything(db: Path, stop: threading.Event) -> None:
    with AuditLog.open(db) as other:
        while not stop.is_set():
            for pending in other.pending_approvals():
                other.answer_approval(pending.id, approved=True, scope="once",
                                      approver="test", channel="test")
            time.sleep(0.1)


def _wait(what: str, ready: Callable[[], bool], deadline_s: float = 90.0) -> None:
    end = time.monotonic() + deadline_s
    while not ready():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.1)


def _run(box: Sandbox, program: str) -> str:
    result = box.check(["python3", "-c", program])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_approved_rm_rf_then_deskhand_undo_brings_every_file_back(
        tmp_path: Path, docker_client: docker.DockerClient, desktop_image: str) -> None:
    script = tmp_path / "clean.yaml"
    script.write_text(SCRIPT, "utf-8")
    db = tmp_path / "audit.db"
    settings = Settings(home=tmp_path, db=db, sandbox="docker", planner="script",
                        perception=False, approval_timeout_s=60)
    services = RunServices(make_sandbox=lambda kind, inputs: DockerSandbox(
        docker_client, DockerSandboxConfig(image=desktop_image)))
    plan = plan_run(settings, script=script)
    stop = threading.Event()
    approver = threading.Thread(target=_approve_everything, args=(db, stop))
    with open_run(plan, RunOptions(services=services)) as run:
        _run(run.sandbox, MAKE_WORK)
        before = _run(run.sandbox, HASHES)
        approver.start()
        summaries = []
        loop = threading.Thread(target=lambda: summaries.append(run.loop.run(plan.task)))
        loop.start()
        try:
            _wait("rm -rf to delete ~/work",
                  lambda: run.sandbox.check(["test", "-e", "work"]).exit_code == 1)
            with AuditLog.open(db) as reader:
                (session,) = reader.list_sessions()
                (checkpoint,) = [e for e in reader.events(session.id)
                                 if e.kind == CHECKPOINT_EVENT and "sha256" in e.data]
            undo = subprocess.run(
                [str(Path(sys.executable).parent / "deskhand"), "undo", session.id,
                 "--db", str(db)], capture_output=True, text=True, timeout=120, check=False)
            assert undo.returncode == 0, undo.stdout + undo.stderr
            assert f"Undone to before step {checkpoint.data['step']}" in undo.stdout
            assert "network" in undo.stdout
            assert _run(run.sandbox, HASHES) == before
        finally:
            loop.join(timeout=120)
            stop.set()
            approver.join()
    (summary,) = summaries
    with AuditLog.open(db) as log:
        kinds = [e.kind for e in log.events(summary.session_id)]
        console = Console(record=True, width=200, color_system=None)
        TerminalReplay(log, summary.session_id, console).print_all()
    shown = console.export_text()
    assert "checkpoint" in shown
    assert "files put back as before step" in shown
    assert kinds.count(ROLLBACK_EVENT) == 1
    assert verify(db).ok
