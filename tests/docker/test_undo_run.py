"""The whole story in a real run, on the local sandbox and in the container: a human approves
`rm -rf ~/work`, the run checkpoints first, `deskhand undo` of a step without a checkpoint
says so and changes nothing, `deskhand undo` on the live session puts every file back byte
for byte, the rollback is in the log, `deskhand audit verify` passes and the replay shows
the checkpoint and the rollback."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from agent.runs import RunOptions, RunServices, open_run, plan_run
from agent.settings import Settings
from audit.checkpoints import CHECKPOINT_EVENT, ROLLBACK_EVENT
from audit.log import AuditLog
from audit.replay import TerminalReplay
from sandbox.base import Sandbox

MAKE_WORK = r"""
import os
w = os.path.expanduser("~/work")
os.makedirs(w + "/deep/er", exist_ok=True)
os.makedirs(w + "/empty", exist_ok=True)
open(w + "/notes.txt", "w").write("keep me\n" * 100)
open(w + "/deep/er/blob.bin", "wb").write(os.urandom(300_000))
open(w + "/run.sh", "w").write("#!/bin/sh\necho hi\n"); os.chmod(w + "/run.sh", 0o755)
os.symlink("notes.txt", w + "/link")
"""
HASHES = r"""
import hashlib, os, stat
for top, dirs, names in sorted(os.walk(os.path.expanduser("~/work"))):
    for n in sorted(dirs + names):
        p = os.path.join(top, n)
        info = os.lstat(p)
        body = os.readlink(p).encode() if stat.S_ISLNK(info.st_mode) else \
            open(p, "rb").read() if stat.S_ISREG(info.st_mode) else b""
        print(p, oct(info.st_mode), hashlib.sha256(body).hexdigest())
"""
# The waits after the rm keep the run stepping (it serves undo between steps) until the
# story is done and stops it: a bound, not the story's clock.
SCRIPT = """task: clean up ~/work
steps:
  - key: ctrl+alt+t
  - wait: 2
  - type: "rm -rf ~/work\\n"
""" + "".join("  - wait: 1\n" for _ in range(150))
DESKHAND = str(Path(sys.executable).parent / "deskhand")


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


def _deskhand(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DESKHAND, *args], capture_output=True, text=True, timeout=180,
                          check=False)


def _services(kind: str, request: pytest.FixtureRequest) -> RunServices:
    if kind == "local":
        return RunServices()
    from sandbox.docker import DockerSandbox, DockerSandboxConfig

    client = request.getfixturevalue("docker_client")
    image = request.getfixturevalue("desktop_image")
    return RunServices(make_sandbox=lambda _kind, _inputs: DockerSandbox(
        client, DockerSandboxConfig(image=image)))


def _undo_story(box: Sandbox, db: Path, before: str) -> None:
    """While the run goes on: undo nothing, then undo the approved step."""
    _wait("rm -rf to delete ~/work", lambda: box.check(["test", "-e", "work"]).exit_code == 1)
    with AuditLog.open(db) as reader:
        (session,) = reader.list_sessions()
        (checkpoint,) = [e for e in reader.events(session.id)
                         if e.kind == CHECKPOINT_EVENT and "sha256" in e.data]
    refused = _deskhand("undo", session.id, "--to-step", "99", "--db", str(db))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "step 99 has no checkpoint; nothing was changed" in refused.stdout
    assert _run(box, HASHES) == ""
    undone = _deskhand("undo", session.id, "--db", str(db))
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert f"Undone to before step {checkpoint.data['step']}" in undone.stdout
    assert "network" in undone.stdout
    assert _run(box, HASHES) == before


@pytest.mark.slow
@pytest.mark.parametrize("kind", [pytest.param("local", marks=pytest.mark.x11),
                                  pytest.param("docker", marks=pytest.mark.docker)])
def test_approved_rm_rf_then_deskhand_undo_brings_every_file_back(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    script = tmp_path / "clean.yaml"
    script.write_text(SCRIPT, "utf-8")
    db = tmp_path / "audit.db"
    settings = Settings(home=tmp_path, db=db, sandbox=kind, planner="script",
                        perception=False, approval_timeout_s=60)
    plan = plan_run(settings, script=script)
    stop = threading.Event()
    approver = threading.Thread(target=_approve_everything, args=(db, stop))
    options = RunOptions(services=_services(kind, request), should_stop=stop.is_set,
                         stop_reason=lambda: "the undo story is done")
    with open_run(plan, options) as run:
        _run(run.sandbox, MAKE_WORK)
        before = _run(run.sandbox, HASHES)
        approver.start()
        summaries = []
        loop = threading.Thread(target=lambda: summaries.append(run.loop.run(plan.task)))
        loop.start()
        try:
            _undo_story(run.sandbox, db, before)
        finally:
            stop.set()
            loop.join(timeout=120)
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
    assert "undo_refused" in kinds
    verified = _deskhand("audit", "verify", "--db", str(db))
    assert verified.returncode == 0, verified.stdout + verified.stderr
