"""The undo key where there is nothing to undo (fast, on the fake sandbox, which takes no
checkpoints), and the timeline keeping the row the user went back to.  The undo itself, on a
real container run, is tests/docker/test_tui_undo.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.loop import StepReport
from audit.log import AuditLog
from audit.records import SessionInfo
from audit.undo_marks import UNDO_REQUEST_EVENT
from tests.tui.conftest import FakeSandboxes, make_app, make_settings, wait_until
from tui.app import DeskhandApp
from tui.run_messages import StepReported
from tui.screens.live import LiveScreen
from tui.screens.undo_confirm import UndoConfirmScreen
from tui.step_undo import UndoTarget
from tui.widgets.approval_history import ApprovalHistory
from tui.widgets.approval_queue import ApprovalQueue
from tui.widgets.timeline import StepTimeline

pytestmark = pytest.mark.anyio


TWO_ASKS = """\
task: Tidy the home folder
steps:
  - type: "echo hello\\n"
  - type: "rm -rf ~/keep\\n"
  - type: "rm -rf ~/other\\n"
"""


def _said(app: DeskhandApp) -> list[str]:
    return [notice.message for notice in app._notifications]


async def test_u_on_a_step_of_a_run_without_checkpoints_says_so_and_asks_nothing(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, sandboxes: FakeSandboxes) -> None:
    script = tmp_path / "two-asks.yaml"
    script.write_text(TWO_ASKS, "utf-8")
    app = make_app(audit_log, make_settings(tmp_path, db_path), script=script,
                   sandboxes=sandboxes)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, LiveScreen), what="live")
        live = app.screen
        assert isinstance(live, LiveScreen)
        queue = live.query_one(ApprovalQueue)
        await wait_until(pilot, lambda: queue.current is not None, what="the approval")
        first = queue.current
        await pilot.press("a")
        # The run now waits on its second question: live, with a step to undo.
        await wait_until(pilot, lambda: queue.current not in (None, first),
                         what="the second approval")
        history = live.query_one(ApprovalHistory)
        await wait_until(pilot, lambda: history.row_count == 1, what="the answered approval")
        await pilot.click(ApprovalHistory)
        await pilot.press("u")
        await pilot.pause()
        assert not isinstance(app.screen, UndoConfirmScreen)
        assert ("step 1 has no checkpoint (this run has taken none: runs in the docker "
                "sandbox take them); nothing was changed") in _said(app)
        await pilot.press("d")
        await wait_until(pilot, lambda: live.summary is not None, what="the run to end")
        await pilot.press("u")
        await pilot.pause()
        assert ("this session's run has ended and its sandbox is gone, so there is nothing "
                "to undo") in _said(app)
    (session,) = audit_log.list_sessions()
    assert not [e for e in audit_log.events(session.id) if e.kind == UNDO_REQUEST_EVENT]


def _report(index: int) -> StepReport:
    return StepReport(index=index, description=f"wait {index}s", effect="allow",
                      status="done", rule_ids=("ui.allow",), reason="", elapsed_ms=5)


async def test_the_timeline_follows_new_steps_unless_the_user_went_back(
        tmp_path: Path, db_path: Path, audit_log: AuditLog) -> None:
    app = make_app(audit_log, make_settings(tmp_path, db_path))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = LiveScreen(app.store, app.options.approver, prepared=None)
        await app.push_screen(screen)
        timeline = screen.query_one(StepTimeline)
        for index in range(3):
            screen.post_message(StepReported(_report(index)))
        await wait_until(pilot, lambda: timeline.row_count == 3, what="three rows")
        assert timeline.step_at_cursor() == 2
        timeline.move_cursor(row=0)
        screen.post_message(StepReported(_report(3)))
        await wait_until(pilot, lambda: timeline.row_count == 4, what="the fourth row")
        assert timeline.step_at_cursor() == 0, "the row the user chose stays highlighted"
        timeline.move_cursor(row=3)
        screen.post_message(StepReported(_report(4)))
        await wait_until(pilot, lambda: timeline.row_count == 5, what="the fifth row")
        assert timeline.step_at_cursor() == 4


async def test_an_undo_asked_of_a_run_that_then_ends_is_reported_at_once(
        tmp_path: Path, db_path: Path, audit_log: AuditLog) -> None:
    # A run that ends between the request and its next step never serves it: the key's
    # follow-up says so as soon as the run is over, not after the answer timeout.
    session = audit_log.start_session(SessionInfo(
        task="t", planner="script", model="m", policy_name="default", policy_sha256="0" * 64,
        sandbox_kind="docker", sandbox_image="img", screen_width=1280, screen_height=800,
        network=False))
    app = make_app(audit_log, make_settings(tmp_path, db_path))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = LiveScreen(app.store, app.options.approver, prepared=None)
        await app.push_screen(screen)
        screen.undo._confirmed(UndoTarget(session, 0, "type rm -rf ~/work"), True)
        assert screen.undo.waiting is not None
        audit_log.end_session(session, outcome="done", reason="finished")
        await wait_until(pilot, lambda: screen.undo.waiting is None, what="the follow-up")
        assert ("the run ended before it served the undo, and its sandbox is gone; nothing "
                "was undone") in _said(app)
    assert [e.kind for e in audit_log.events(session)].count(UNDO_REQUEST_EVENT) == 1
