"""The sessions browser pages through a real database and replays a session."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from audit.log import AuditLog
from tests.tui.conftest import USER, FakeSandboxes, make_app, make_settings, start_run, wait_until
from tui.bench import build_sessions_db
from tui.screens.replay import ReplayScreen
from tui.screens.sessions import SessionsScreen
from tui.widgets.approval_queue import ApprovalQueue
from tui.widgets.frame_view import FrameView
from tui.widgets.session_table import SessionTable

pytestmark = pytest.mark.anyio


async def test_the_browser_loads_pages_as_the_cursor_nears_the_end(
        tmp_path: Path, db_path: Path) -> None:
    ids = build_sessions_db(db_path, sessions=45, steps=1)
    with AuditLog.open(db_path) as log:
        app = make_app(log, make_settings(tmp_path, db_path))
        async with app.run_test(size=(140, 40)) as pilot:
            screen = SessionsScreen(app.store, page_size=20)
            await app.push_screen(screen)
            await pilot.pause()
            table = screen.query_one(SessionTable)
            assert table.row_count == 20
            assert table.session_id_at(0) == ids[-1], "newest first"
            for _ in range(10):  # page down until everything is loaded
                await pilot.press("pagedown")
                await pilot.pause()
            assert screen.exhausted
            assert table.row_count == 45
            assert [table.session_id_at(row) for row in range(45)] == list(reversed(ids))


async def test_replay_steps_through_frames_with_the_action_drawn(
        tmp_path: Path, db_path: Path) -> None:
    (session_id,) = build_sessions_db(db_path, sessions=1, steps=3)
    with AuditLog.open(db_path) as log:
        app = make_app(log, make_settings(tmp_path, db_path))
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.press("f2")
            await pilot.pause()
            assert isinstance(app.screen, SessionsScreen)
            await pilot.press("enter")
            await pilot.pause()
            replay = app.screen
            assert isinstance(replay, ReplayScreen)
            assert replay.session_id == session_id
            assert replay.query_one("#replay-steps", DataTable).row_count == 3
            view = replay.query_one("#replay-frame", FrameView)
            first = view.picture
            assert first is not None
            assert first.action is not None
            assert first.action.type == "click", "step 0 of the benchmark sessions clicks"
            await pilot.press("right")
            await pilot.pause()
            assert replay.index == 1
            second = view.picture
            assert second is not None
            assert second.action is not None
            assert second.action.type == "type"
            await pilot.press("t")
            await pilot.pause()
            after = view.picture
            assert after is not None
            assert after.action is None, "the frame after a step has nothing drawn on it"


async def test_replay_names_who_approved_a_step(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, risky_script: Path,
        sandboxes: FakeSandboxes) -> None:
    app = make_app(audit_log, make_settings(tmp_path, db_path), script=risky_script,
                   sandboxes=sandboxes)
    async with app.run_test(size=(160, 48)) as pilot:
        live = await start_run(pilot)
        await wait_until(pilot, lambda: live.query_one(ApprovalQueue).current is not None,
                         what="the approval")
        await pilot.press("a")
        await wait_until(pilot, lambda: live.summary is not None, what="the run to end")
        assert live.summary is not None
        app.push_screen(ReplayScreen(app.store, live.summary.session_id))
        await pilot.pause()
        replay = app.screen
        assert isinstance(replay, ReplayScreen)
        replay.action_step(2)
        await pilot.pause()
        detail = str(replay.query_one("#replay-detail", Static).content)
        assert f"approved (once) by {USER}@tui via tui" in detail
        assert "shell.destructive" in detail
