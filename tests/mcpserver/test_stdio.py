"""``deskhand mcp`` over stdio, driven by the real ``mcp`` client SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests.mcpserver.conftest import (
    ROOT,
    SERVER,
    data_of,
    start_approver,
    stdio_session,
    text_of,
)
from tests.mcpserver.scenario import check_audit, full_desktop_session

pytestmark = pytest.mark.anyio

FAKE = ["--sandbox", "fake", "--no-perception"]


@pytest.mark.x11
@pytest.mark.slow
async def test_a_client_drives_a_local_desktop_through_policy_approvals_and_audit(
        tmp_path: Path, db_path: Path) -> None:
    args = ["--sandbox", "local", "--db", str(db_path), "--approval-timeout", "4"]
    async with stdio_session(args, tmp_path / "server.log") as session:
        session_id = await full_desktop_session(session, db_path)
    check_audit(db_path, session_id, client="mcp")


async def test_observe_grant_offers_no_tool_that_acts(tmp_path: Path, db_path: Path) -> None:
    async with stdio_session([*FAKE, "--tools", "observe", "--db", str(db_path)],
                             tmp_path / "server.log") as session:
        names = {t.name for t in (await session.list_tools()).tools}
    assert names == {"screenshot", "session", "await_approval"}


def test_an_unknown_grant_is_a_start_up_error_not_everything(db_path: Path) -> None:
    done = subprocess.run([*SERVER, *FAKE, "--tools", "all", "--db", str(db_path)], cwd=ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown grant 'all'" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


async def test_a_slow_approval_sends_progress_then_a_ticket_await_approval_collects(
        tmp_path: Path, db_path: Path) -> None:
    args = [*FAKE, "--db", str(db_path), "--approval-wait", "3", "--approval-timeout", "60"]
    heard_messages: list[str] = []

    async def heard(progress: float, total: float | None, message: str | None) -> None:
        heard_messages.append(message or "")

    async with stdio_session(args, tmp_path / "server.log") as session:
        pending = await session.call_tool("computer", {"action": {
            "type": "type", "text": "rm -rf ~/keep\n"}}, progress_callback=heard)
        info = data_of(pending)
        assert not pending.isError, text_of(pending)
        assert info["status"] == "approval_pending"
        assert info["rule_ids"] == ["shell.destructive"]
        approver = start_approver(db_path, approve=True)
        done = await session.call_tool("await_approval", {"ticket": info["ticket"]})
        approver.communicate(timeout=60)
        again = await session.call_tool("await_approval", {"ticket": info["ticket"]})
    assert heard_messages
    assert all("waiting for a human to approve" in m for m in heard_messages)
    assert "shell.destructive" in heard_messages[0]
    assert not done.isError, text_of(done)
    assert data_of(done)["status"] == "done"
    assert again.isError


async def test_a_denial_by_a_human_names_them(tmp_path: Path, db_path: Path) -> None:
    async with stdio_session([*FAKE, "--db", str(db_path), "--approval-timeout", "60"],
                             tmp_path / "server.log") as session:
        approver = start_approver(db_path, approve=False)
        result = await session.call_tool("computer", {"action": {
            "type": "type", "text": "rm -rf ~/keep\n"}})
        approver.communicate(timeout=60)
    assert result.isError
    assert "tester@other-process denied it" in text_of(result)


async def test_an_invalid_action_is_an_error_and_an_audited_invalid_step(
        tmp_path: Path, db_path: Path) -> None:
    from audit.log import AuditLog

    async with stdio_session([*FAKE, "--db", str(db_path)], tmp_path / "server.log") as session:
        off_screen = await session.call_tool("computer", {"action": {
            "type": "click", "x": 5000, "y": 10}})
        unknown_key = await session.call_tool("computer", {"action": {
            "type": "key", "keys": ["hyperspace"]}})
        session_id = data_of(await session.call_tool("session", {}))["session_id"]
    assert off_screen.isError
    assert "outside" in text_of(off_screen)
    assert unknown_key.isError
    with AuditLog.open(db_path) as log:
        statuses = [s.status for s in log.steps(session_id)]
    assert statuses == ["invalid", "invalid"]


def test_the_client_ending_the_session_closes_it_as_done(tmp_path: Path, db_path: Path) -> None:
    from audit.log import AuditLog

    async def one_call() -> None:
        async with stdio_session([*FAKE, "--db", str(db_path)],
                                 tmp_path / "server.log") as session:
            await session.call_tool("screenshot", {})

    anyio.run(one_call)
    with AuditLog.open(db_path) as log:
        (record,) = log.list_sessions()
    assert record.outcome == "done"
    assert "MCP client ended the session" in (record.reason or "")
    assert sys.executable


@pytest.mark.docker
@pytest.mark.slow
async def test_a_client_drives_a_docker_desktop(tmp_path: Path, db_path: Path) -> None:
    args = ["--sandbox", "docker", "--db", str(db_path), "--approval-timeout", "4"]
    async with stdio_session(args, tmp_path / "server.log") as session:
        session_id = await full_desktop_session(session, db_path)
        about = data_of(await session.call_tool("session", {}))
    assert about["sandbox"] == "docker"
    assert str(about["vnc"]).startswith("127.0.0.1:")
    check_audit(db_path, session_id, client="mcp")
