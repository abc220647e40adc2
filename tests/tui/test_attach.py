"""``deskhand tui --attach`` answers the approvals of a ``deskhand run`` in another process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Static

from audit.log import AuditLog
from audit.presence import ApproverPresence
from audit.records import SessionInfo
from policies.decision import Decision
from sandbox.actions import TypeText
from sandbox.fake import FakeSandbox
from tests.tui.conftest import USER, make_app, make_settings, wait_until
from tui.screens.attach import AttachScreen
from tui.widgets.approval_queue import ApprovalQueue
from tui.widgets.frame_view import FrameView

pytestmark = pytest.mark.anyio


def _start_run(db_path: Path, script: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "agent", "run", "--script", str(script),
               "--sandbox", "fake", "--policy", "default", "--approval-timeout", "30",
               "--db", str(db_path)]
    # Wide enough that each step stays on one line of the run's output.
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return process.returncode, output


async def test_attached_tui_approves_a_run_in_another_process(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, risky_script: Path) -> None:
    app = make_app(audit_log, make_settings(tmp_path, db_path), attach=True)
    process: subprocess.Popen[str] | None = None
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            assert isinstance(app.screen, AttachScreen)
            # Attached first: a run without a terminal denies at once when nobody is.
            assert ApproverPresence(db_path).attached() == [f"{USER}@tui"]
            process = _start_run(db_path, risky_script)
            queue = app.screen.query_one(ApprovalQueue)
            await wait_until(pilot, lambda: queue.current is not None or
                             process.poll() is not None, timeout_s=40,
                             what="the other process's approval request")
            request = queue.current
            assert request is not None, _finish(process)[1]
            assert request.summary == "type 'rm -rf ~/keep\\n'"
            assert queue.query_one("#approval-crop", FrameView).picture is not None
            screen = app.screen
            await wait_until(pilot, lambda: len(screen.running) == 1,
                             what="the run listed as in progress")
            assert screen.running[0].id == request.session_id
            # The run may be listed at a poll before its first step was recorded; the
            # frame shows from the poll that sees the step.
            await wait_until(pilot, lambda: screen.query_one(
                "#attach-frame", FrameView).picture is not None, what="the run's frame")
            await pilot.press("a")
            await wait_until(pilot, lambda: process is not None and process.poll() is not None,
                             timeout_s=40, what="the run to finish")
    finally:
        assert process is not None
        code, output = _finish(process)

    assert code == 0, output
    risky_line = next(line for line in output.splitlines() if "rm -rf" in line and "#" in line)
    assert "done" in risky_line, output
    assert f"by {USER}@tui" in risky_line, output
    (session,) = audit_log.list_sessions()
    approvals = audit_log.approvals(session.id)
    assert [a.answer.channel for a in approvals if a.answer] == ["tui-attach"]


async def test_closing_the_attached_tui_detaches_its_approver(
        tmp_path: Path, db_path: Path, audit_log: AuditLog) -> None:
    app = make_app(audit_log, make_settings(tmp_path, db_path), attach=True)
    async with app.run_test(size=(120, 40)):
        assert ApproverPresence(db_path).anyone_attached()
    assert not ApproverPresence(db_path).anyone_attached()


async def test_f_names_the_full_frame_and_the_vnc_address_of_a_watched_run(
        tmp_path: Path, db_path: Path, audit_log: AuditLog) -> None:
    # A watched run elsewhere (`deskhand run --watch`) records where to watch it.
    with FakeSandbox() as box:
        frame = box.screenshot()
    session = audit_log.start_session(SessionInfo(
        task="t", planner="script", model="m", policy_name="default", policy_sha256="0" * 64,
        sandbox_kind="docker", sandbox_image="img", screen_width=frame.width,
        screen_height=frame.height, network=False,
        extra={"viewer": "127.0.0.1::5911"}))
    audit_log.put_frame(frame)
    decision = Decision(effect="ask", rule_ids=("shell.destructive",), reason="r",
                        policy_sha256="0" * 64)
    step = audit_log.record_intent(session, index=0,
                                   action=TypeText(text="rm -rf ~/keep\n"),
                                   proposed_raw={}, validation_error=None, decision=decision,
                                   frame_before_sha256=frame.sha256, secret=False)
    audit_log.request_approval(step, frame_sha256=frame.sha256, summary="type rm",
                               rule_ids=["shell.destructive"], reason="r", timeout_s=60)
    app = make_app(audit_log, make_settings(tmp_path, db_path), attach=True)
    async with app.run_test(size=(160, 48)) as pilot:
        queue = app.screen.query_one(ApprovalQueue)
        await wait_until(pilot, lambda: queue.current is not None, what="the request")
        await pilot.press("f")
        shown = str(queue.query_one("#approval-full", Static).render())
    assert "vncviewer 127.0.0.1::5911" in shown
    assert Path(shown.split()[2]).is_file(), shown
