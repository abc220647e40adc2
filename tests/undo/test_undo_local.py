"""Checkpoint, `rm -rf ~/work`, undo on the real local sandbox: every file back, in the chain."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.undo import (
    UNDO_REQUEST_EVENT,
    CheckpointBounds,
    StepCheckpoints,
    take_checkpoint,
    undo,
)
from audit.checkpoints import ROLLBACK_EVENT, checkpoints
from audit.log import AuditLog
from audit.records import SessionInfo
from audit.verify import verify
from policies.decision import Decision, PolicyContext
from sandbox.local import LocalSandbox

# Writes ~/undo-e2e/work: text, random bytes, a nested tree, an executable and a symlink.
MAKE_WORK = r"""
import os
w = os.path.expanduser("~/undo-e2e/work")
os.makedirs(w + "/deep/er", exist_ok=True)
open(w + "/notes.txt", "w").write("keep me\n" * 100)
open(w + "/deep/er/blob.bin", "wb").write(os.urandom(300_000))
open(w + "/run.sh", "w").write("#!/bin/sh\necho hi\n"); os.chmod(w + "/run.sh", 0o755)
os.symlink("notes.txt", w + "/link")
"""
HASHES = r"""
import hashlib, os
for top, dirs, names in sorted(os.walk(os.path.expanduser("~/undo-e2e/work"))):
    for n in sorted(names):
        p = os.path.join(top, n)
        body = os.readlink(p).encode() if os.path.islink(p) else open(p, "rb").read()
        print(p, oct(os.lstat(p).st_mode), hashlib.sha256(body).hexdigest())
"""
# The checkpoints of these tests cover one folder of the sandbox's private home, so
# each test starts from a tree it made (the whole home is the run story's, test_undo_run).
ROOT = "~/undo-e2e"
BOUNDS = CheckpointBounds(roots=(ROOT,))


@pytest.fixture(scope="module")
def box() -> Iterator[LocalSandbox]:
    with LocalSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog.open(tmp_path / "audit.db") as opened:
        yield opened


def _session(log: AuditLog) -> str:
    return log.start_session(SessionInfo(
        task="clean up", planner="script", model="", policy_name="default",
        policy_sha256="0" * 64, sandbox_kind="local", sandbox_image="", screen_width=1280,
        screen_height=800, network=False))


def _fresh_work_session(box: LocalSandbox, log: AuditLog) -> str:
    """A new session over a freshly made ~/undo-e2e/work."""
    box.check(["rm", "-rf", "undo-e2e"])
    _run(box, MAKE_WORK)
    return _session(log)


def _undo_command(session: str, log: AuditLog, *options: str) -> list[str]:
    return [str(Path(sys.executable).parent / "deskhand"), "undo", session, *options,
            "--db", str(log.path)]


def _run(box: LocalSandbox, program: str) -> str:
    result = box.check(["python3", "-c", program])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_undo_after_rm_rf_puts_every_file_back_byte_for_byte(box: LocalSandbox,
                                                             log: AuditLog) -> None:
    box.check(["rm", "-rf", "undo-e2e"])
    _run(box, MAKE_WORK)
    before = _run(box, HASHES)
    session = _session(log)
    assert take_checkpoint(box, log, session, 1, BOUNDS)
    removal = "rm -rf ~/undo-e2e/work && echo new > ~/undo-e2e/stray.txt"
    assert box.check(["sh", "-c", removal]).exit_code == 0
    assert _run(box, HASHES) == ""

    outcome = undo(box, log, session, 1, BOUNDS)

    assert outcome.restored, outcome.message
    assert "not undone" in outcome.message
    assert _run(box, HASHES) == before
    assert box.check(["test", "-e", "undo-e2e/stray.txt"]).exit_code == 1
    rollbacks = [e for e in log.events(session) if e.kind == ROLLBACK_EVENT]
    assert [e.data["to_step"] for e in rollbacks] == [1]
    log.close()
    assert verify(log.path).ok


def test_a_second_checkpoint_stores_only_the_files_that_changed(box: LocalSandbox,
                                                                log: AuditLog) -> None:
    box.check(["rm", "-rf", "undo-e2e"])
    _run(box, MAKE_WORK)
    session = _session(log)
    assert take_checkpoint(box, log, session, 1, BOUNDS)
    box.check(["sh", "-c", "echo changed >> ~/undo-e2e/work/notes.txt"])
    assert take_checkpoint(box, log, session, 2, BOUNDS)
    first, second = (c.manifest for c in checkpoints(log, session))
    assert first is not None
    assert second is not None
    assert first.new_bytes >= 300_000
    assert second.new_bytes < 2_000
    assert first.sha256 != second.sha256


def test_undo_of_a_step_without_a_checkpoint_says_so_and_changes_nothing(
        box: LocalSandbox, log: AuditLog) -> None:
    session = _fresh_work_session(box, log)
    assert take_checkpoint(box, log, session, 1, BOUNDS)
    box.check(["rm", "-rf", "undo-e2e/work/deep"])
    after_rm = _run(box, HASHES)

    outcome = undo(box, log, session, 3, BOUNDS)

    assert not outcome.restored
    assert outcome.message == "step 3 has no checkpoint; nothing was changed"
    assert _run(box, HASHES) == after_rm
    assert not [e for e in log.events(session) if e.kind == ROLLBACK_EVENT]


def test_a_checkpoint_over_its_size_bound_is_recorded_as_skipped(box: LocalSandbox,
                                                                 log: AuditLog) -> None:
    box.check(["rm", "-rf", "undo-e2e"])
    _run(box, MAKE_WORK)
    session = _session(log)
    assert not take_checkpoint(box, log, session, 1, CheckpointBounds(roots=(ROOT,),
                                                                      max_bytes=1000))
    (recorded,) = checkpoints(log, session)
    assert recorded.manifest is None
    assert "over the bound of 1000" in recorded.skipped
    assert "was skipped" in undo(box, log, session, 1, BOUNDS).message


def _wait_for_request(log: AuditLog, session: str, deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while not any(e.kind == UNDO_REQUEST_EVENT for e in log.events(session)):
        assert time.monotonic() < end, "deskhand undo never asked"
        time.sleep(0.05)


def test_deskhand_undo_asks_the_live_run_which_restores_and_tells_the_planner(
        box: LocalSandbox, log: AuditLog) -> None:
    box.check(["rm", "-rf", "undo-e2e"])
    _run(box, MAKE_WORK)
    before = _run(box, HASHES)
    session = _session(log)
    hook = StepCheckpoints(box, log, BOUNDS)
    decision = Decision("ask", ("shell.command.destructive",), "destructive", "0" * 64)
    context = PolicyContext(screen_width=1280, screen_height=800, window_title="xterm")
    assert hook(session, 4, decision, True, context) == ""  # approved: checkpointed
    box.check(["rm", "-rf", "undo-e2e/work"])
    command = _undo_command(session[:8], log, "--to-step", "4")
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as undo_process:
        _wait_for_request(log, session)
        (notice,) = hook.serve_requests(session)
        out, err = undo_process.communicate(timeout=60)
    assert undo_process.returncode == 0, err
    assert out.startswith("Undone to before step 4")
    assert "network" in out
    assert notice.startswith("Undone: the desktop's files")
    assert _run(box, HASHES) == before


def test_deskhand_undo_of_a_finished_session_changes_nothing(box: LocalSandbox,
                                                             log: AuditLog) -> None:
    session = _session(log)
    log.end_session(session, outcome="done", reason="finished")
    done = subprocess.run(_undo_command(session, log), capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert "is not running: its sandbox is gone" in done.stderr


def test_deskhand_undo_says_so_at_once_when_the_run_ends_before_serving_it(
        box: LocalSandbox, log: AuditLog) -> None:
    session = _fresh_work_session(box, log)
    assert take_checkpoint(box, log, session, 2, BOUNDS)
    with subprocess.Popen(_undo_command(session, log), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as undo_process:
        _wait_for_request(log, session)
        log.end_session(session, outcome="done", reason="finished")
        out, err = undo_process.communicate(timeout=60)
    assert undo_process.returncode == 2, out + err
    assert "the run ended before it served the undo" in err
    assert ROLLBACK_EVENT not in [e.kind for e in log.events(session)]


def test_an_undo_whose_stored_files_are_gone_says_it_failed_and_is_recorded(
        box: LocalSandbox, log: AuditLog) -> None:
    box.check(["rm", "-rf", "undo-e2e"])
    _run(box, MAKE_WORK)
    session = _session(log)
    assert take_checkpoint(box, log, session, 1, BOUNDS)
    box.check(["rm", "-rf", "undo-e2e/work"])
    shutil.rmtree(f"{log.path}.checkpoints")

    outcome = undo(box, log, session, 1, BOUNDS)

    assert not outcome.restored
    assert outcome.failed
    assert "is missing" in outcome.message
    assert [e.kind for e in log.events(session)].count("undo_failed") == 1
