"""A scripted run in the TUI hits a risky step; the approval queue answers it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from textual.pilot import Pilot
from textual.widgets import Static

from audit.log import AuditLog
from audit.records import StepRecord
from tests.tui.conftest import RISKY_TEXT, USER, FakeSandboxes, make_app, make_settings, wait_until
from tui.app import DeskhandApp
from tui.screens.live import STOPPING_NOTICE, LiveScreen
from tui.widgets.approval_queue import ApprovalQueue
from tui.widgets.frame_view import FrameView
from tui.widgets.timeline import StepTimeline

pytestmark = pytest.mark.anyio


def _live(app: DeskhandApp) -> LiveScreen:
    screen = app.screen
    assert isinstance(screen, LiveScreen), f"expected the live screen, got {screen!r}"
    return screen


def _risky_step(log: AuditLog, session_id: str) -> StepRecord:
    steps = [s for s in log.steps(session_id) if getattr(s.action, "text", None) == RISKY_TEXT]
    assert len(steps) == 1
    return steps[0]


async def _start_and_wait_for_approval(app: DeskhandApp, pilot: Pilot[None]) -> ApprovalQueue:
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: isinstance(app.screen, LiveScreen), what="the live screen")
    queue = _live(app).query_one(ApprovalQueue)
    await wait_until(pilot, lambda: queue.current is not None, what="the approval request")
    return queue


async def test_approve_runs_the_step_and_names_the_approver(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, risky_script: Path,
        sandboxes: FakeSandboxes) -> None:
    app = make_app(audit_log, make_settings(tmp_path, db_path), script=risky_script,
                   sandboxes=sandboxes)
    async with app.run_test(size=(160, 48)) as pilot:
        queue = await _start_and_wait_for_approval(app, pilot)
        request = queue.current
        assert request is not None
        assert request.summary == "type 'rm -rf ~/keep\\n'"
        assert request.rule_ids == ("shell.command.destructive", "shell.destructive")
        crop = queue.query_one("#approval-crop", FrameView)
        assert crop.picture is not None, "the approval shows the frame it was asked with"
        assert RISKY_TEXT not in sandboxes.typed, "nothing runs before the answer"

        await pilot.press("a")
        live = _live(app)
        await wait_until(pilot, lambda: live.summary is not None, what="the run to end")
        assert live.query_one(StepTimeline).row_count == 4

    assert live.summary is not None
    assert live.summary.outcome == "done"
    assert sandboxes.typed == ["echo hello\n", RISKY_TEXT, "echo after\n"]
    step = _risky_step(audit_log, live.summary.session_id)
    assert step.status == "done"
    assert step.approval is not None
    assert step.approval.answer is not None
    assert step.approval.answer.approved
    assert step.approval.answer.approver == f"{USER}@tui"
    assert step.approval.answer.channel == "tui"
    assert step.approval.answer.scope == "once"


async def test_deny_keeps_the_step_from_running(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, risky_script: Path,
        sandboxes: FakeSandboxes) -> None:
    app = make_app(audit_log, make_settings(tmp_path, db_path), script=risky_script,
                   sandboxes=sandboxes)
    async with app.run_test(size=(160, 48)) as pilot:
        await _start_and_wait_for_approval(app, pilot)
        await pilot.press("d")
        live = _live(app)
        await wait_until(pilot, lambda: live.summary is not None, what="the run to end")

    assert live.summary is not None
    assert live.summary.denied == 1
    assert RISKY_TEXT not in sandboxes.typed
    assert sandboxes.typed == ["echo hello\n", "echo after\n"]
    step = _risky_step(audit_log, live.summary.session_id)
    assert step.status == "denied"
    assert step.approval is not None
    assert step.approval.answer is not None
    assert not step.approval.answer.approved
    assert step.approval.answer.approver == f"{USER}@tui"


async def test_no_answer_before_the_timeout_denies(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, risky_script: Path,
        sandboxes: FakeSandboxes) -> None:
    settings = make_settings(tmp_path, db_path, approval_timeout_s=0.6)
    app = make_app(audit_log, settings, script=risky_script, sandboxes=sandboxes)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, LiveScreen), what="live screen")
        live = _live(app)
        await wait_until(pilot, lambda: live.summary is not None, what="the run to end")
        queue = live.query_one(ApprovalQueue)
        queue.poll()
        assert queue.current is None, "an expired request leaves the queue"

    assert RISKY_TEXT not in sandboxes.typed
    step = _risky_step(audit_log, live.summary.session_id)  # type: ignore[union-attr]
    assert step.status == "denied"
    assert step.approval is not None
    assert step.approval.status == "expired"
    assert step.approval.answer is None


async def test_allow_for_the_session_stops_asking_for_that_rule(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, sandboxes: FakeSandboxes) -> None:
    script = tmp_path / "twice.yaml"
    script.write_text('task: twice\nsteps:\n  - type: "rm -rf ~/a\\n"\n'
                      '  - type: "rm -rf ~/b\\n"\n', encoding="utf-8")
    app = make_app(audit_log, make_settings(tmp_path, db_path), script=script,
                   sandboxes=sandboxes)
    async with app.run_test(size=(160, 48)) as pilot:
        await _start_and_wait_for_approval(app, pilot)
        await pilot.press("s")
        live = _live(app)
        await wait_until(pilot, lambda: live.summary is not None, what="the run to end")

    assert sandboxes.typed == ["rm -rf ~/a\n", "rm -rf ~/b\n"]
    assert live.summary is not None
    approvals = audit_log.approvals(live.summary.session_id)
    assert len(approvals) == 1, "the second rm ran under the session grant"
    assert approvals[0].answer is not None
    assert approvals[0].answer.scope == "session"


async def test_bad_script_is_reported_on_the_task_screen(
        tmp_path: Path, db_path: Path, audit_log: AuditLog) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("steps: [{fly: 1}]\n", encoding="utf-8")
    app = make_app(audit_log, make_settings(tmp_path, db_path), script=broken)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, LiveScreen)
        error = app.screen.query_one("#task-error")
        assert "broken.yaml" in str(error.render())


async def test_quitting_while_an_approval_waits_denies_it_and_interrupts_the_run(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, risky_script: Path,
        sandboxes: FakeSandboxes) -> None:
    app = make_app(audit_log, make_settings(tmp_path, db_path), script=risky_script,
                   sandboxes=sandboxes)
    async with app.run_test(size=(160, 48)) as pilot:
        queue = await _start_and_wait_for_approval(app, pilot)
        request = queue.current
        assert request is not None
        await pilot.press("ctrl+q")

    (session,) = audit_log.list_sessions()
    assert session.outcome == "interrupted"
    assert RISKY_TEXT not in sandboxes.typed
    approval = audit_log.approvals(session.id)[0]
    assert approval.answer is not None
    assert not approval.answer.approved


async def test_the_first_answer_wins_even_when_it_came_from_elsewhere(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, risky_script: Path,
        sandboxes: FakeSandboxes) -> None:
    app = make_app(audit_log, make_settings(tmp_path, db_path), script=risky_script,
                   sandboxes=sandboxes)
    async with app.run_test(size=(160, 48)) as pilot:
        queue = await _start_and_wait_for_approval(app, pilot)
        request = queue.current
        assert request is not None
        assert audit_log.answer_approval(request.id, approved=False, scope="once",
                                         approver="someone@tty", channel="terminal")
        # The queue has not polled since: its key press loses the race.
        assert not queue.answer(approved=True)
        live = _live(app)
        await wait_until(pilot, lambda: live.summary is not None, what="the run to end")

    assert RISKY_TEXT not in sandboxes.typed
    assert live.summary is not None
    step = _risky_step(audit_log, live.summary.session_id)
    assert step.approval is not None
    assert step.approval.answer is not None
    assert step.approval.answer.approver == "someone@tty"


async def test_a_secret_is_masked_in_the_queue_the_timeline_and_the_log(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, sandboxes: FakeSandboxes) -> None:
    secret = "sk-ant-" + "Q7x" * 12
    script = tmp_path / "secret.yaml"
    script.write_text(f'task: paste a key\nsteps:\n  - type: "{secret}"\n', encoding="utf-8")
    app = make_app(audit_log, make_settings(tmp_path, db_path), script=script,
                   sandboxes=sandboxes)
    async with app.run_test(size=(160, 48)) as pilot:
        queue = await _start_and_wait_for_approval(app, pilot)
        request = queue.current
        assert request is not None
        assert secret not in request.summary
        assert "••••" in request.summary
        shown = " ".join(str(s.content) for s in queue.query(Static))
        assert secret not in shown
        assert "••••" in shown
        await pilot.press("a")
        live = _live(app)
        await wait_until(pilot, lambda: live.summary is not None, what="the run to end")
        timeline = live.query_one(StepTimeline)
        cells = " ".join(str(cell) for cell in timeline.get_row_at(0))
        assert secret not in cells

    assert sandboxes.typed == [secret], "approved, the real text is typed"
    assert live.summary is not None
    (step,) = audit_log.steps(live.summary.session_id)
    assert secret not in str(step.action)


async def test_the_card_shows_the_typed_line_and_f_writes_the_full_frame(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, sandboxes: FakeSandboxes) -> None:
    script = tmp_path / "chained.yaml"
    script.write_text('task: chain a command\nsteps:\n  - type: "cd ~ && "\n'
                      '  - type: "rm -rf ~/keep\\n"\n', encoding="utf-8")
    app = make_app(audit_log, make_settings(tmp_path, db_path), script=script,
                   sandboxes=sandboxes)
    async with app.run_test(size=(160, 48)) as pilot:
        queue = await _start_and_wait_for_approval(app, pilot)
        line = str(queue.query_one("#approval-line", Static).render())
        assert "cd ~ && rm -rf ~/keep⏎" in line
        await pilot.press("f")
        shown = str(queue.query_one("#approval-full", Static).render())
        await pilot.press("d")
    path = Path(shown.removeprefix("full frame").strip())
    assert path.is_file(), shown
    with Image.open(path) as full:
        assert full.size == (1280, 800), "the frame at full resolution, not the crop"


async def test_stopping_says_it_waits_for_the_current_step(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, risky_script: Path,
        sandboxes: FakeSandboxes) -> None:
    app = make_app(audit_log, make_settings(tmp_path, db_path), script=risky_script,
                   sandboxes=sandboxes)
    async with app.run_test(size=(160, 48)) as pilot:
        await _start_and_wait_for_approval(app, pilot)
        await pilot.press("x")
        live = _live(app)
        await wait_until(pilot, lambda: live.summary is not None, what="the run to stop")
        said = [notice.message for notice in app._notifications]
    assert STOPPING_NOTICE in said
    (session,) = audit_log.list_sessions()
    assert session.outcome == "interrupted"
    assert "pending" not in [s.status for s in audit_log.steps(session.id)]


async def test_the_card_names_the_window_and_reads_the_words_on_screen(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, risky_script: Path,
        sandboxes: FakeSandboxes) -> None:
    app = make_app(audit_log, make_settings(tmp_path, db_path), script=risky_script,
                   sandboxes=sandboxes, read_screen_words=True)
    async with app.run_test(size=(160, 48)) as pilot:
        queue = await _start_and_wait_for_approval(app, pilot)
        window = str(queue.query_one("#approval-window", Static).render())
        words = queue.query_one("#approval-words", Static)
        await wait_until(pilot, lambda: "echo hello" in str(words.render()), timeout_s=60,
                         what="the OCR of the approval's frame")
        await pilot.press("d")
    assert "fake desktop" in window
