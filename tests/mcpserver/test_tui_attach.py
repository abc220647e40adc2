"""``deskhand tui --attach`` answers the approvals of an MCP session, as it does for a run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from audit.log import AuditLog
from tests.mcpserver.conftest import data_of, stdio_session, text_of
from tests.tui.conftest import USER, make_app, make_settings, wait_until
from tui.widgets.approval_queue import ApprovalQueue

pytestmark = pytest.mark.anyio

FAKE = ["--sandbox", "fake", "--no-perception"]


async def test_an_attached_tui_approves_what_the_mcp_client_asked(
        tmp_path: Path, db_path: Path) -> None:
    args = [*FAKE, "--db", str(db_path), "--approval-timeout", "60"]
    async with stdio_session(args, tmp_path / "server.log") as session:
        await session.call_tool("screenshot", {})  # the desktop and its log now exist
        with AuditLog.open(db_path) as log:
            app = make_app(log, make_settings(tmp_path, db_path), attach=True)
            async with app.run_test(size=(160, 48)) as pilot:
                call = asyncio.ensure_future(session.call_tool("computer", {"action": {
                    "type": "type", "text": "rm -rf ~/keep\n"}, "screenshot": False}))
                queue = app.screen.query_one(ApprovalQueue)
                await wait_until(pilot, lambda: queue.current is not None or call.done(),
                                 timeout_s=40, what="the MCP call's approval request")
                assert queue.current is not None, text_of(call.result())
                assert queue.current.summary == "type 'rm -rf ~/keep\\n'"
                await pilot.press("a")
                result = await asyncio.wait_for(call, timeout=40)
            approvals = log.approvals(log.list_sessions()[0].id)
    assert not result.isError, text_of(result)
    assert data_of(result)["status"] == "done"
    assert [(a.answer.approver, a.answer.channel) for a in approvals if a.answer] == [
        (f"{USER}@tui", "tui-attach")]
