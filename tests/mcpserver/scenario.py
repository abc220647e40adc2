"""One session's worth of checks against a real desktop, run over each transport."""

from __future__ import annotations

from pathlib import Path

from mcp import ClientSession

from agent.mcp.screen import MAX_IMAGE_BYTES, MAX_LONG_SIDE_PX
from audit.log import AuditLog
from tests.mcpserver.conftest import data_of, image_of, start_approver, text_of, verify_audit

ALL_TOOLS = {"screenshot", "computer", "click_text", "wait_for_text", "read_screen",
             "session", "await_approval"}


async def act(session: ClientSession, action: dict[str, object]) -> str:
    result = await session.call_tool("computer", {"action": action, "screenshot": False})
    assert not result.isError, text_of(result)
    return str(data_of(result)["frame_id"])


async def open_terminal(session: ClientSession) -> None:
    """ctrl+alt+t, then screenshots until the screen shows something new."""
    before = data_of(await session.call_tool("screenshot", {}))["frame_id"]
    await act(session, {"type": "key", "keys": ["ctrl", "alt", "t"]})
    for _ in range(200):
        now = data_of(await session.call_tool("screenshot", {}))["frame_id"]
        if now != before:
            return
    raise AssertionError("no terminal window appeared")


async def check_screenshot_limits(session: ClientSession) -> None:
    result = await session.call_tool("screenshot", {})
    assert not result.isError, text_of(result)
    data, image = image_of(result)
    info = data_of(result)
    assert len(data) <= MAX_IMAGE_BYTES
    assert max(image.size) <= MAX_LONG_SIDE_PX
    assert info["screenshot_size"] == f"{image.width}x{image.height}"
    assert info["screen_size"] == "1280x800"
    assert len(info["frame_id"]) == 12
    assert info["image"]["bytes"] == len(data)


async def check_typing_shows(session: ClientSession) -> None:
    await open_terminal(session)
    await act(session, {"type": "type", "text": "echo typed $((6*7)) times\n"})
    found = await session.call_tool("wait_for_text", {"text": "typed 42 times", "timeout": 20})
    assert not found.isError, text_of(found)
    box = data_of(found)["box"]
    assert 0 <= box[0] < box[2] <= 1280
    screen = await session.call_tool("read_screen", {})
    assert any("42" in e["text"] for e in data_of(screen)["elements"]), text_of(screen)


async def check_denied(session: ClientSession) -> None:
    result = await session.call_tool("computer", {"action": {"type": "key",
                                                             "keys": ["ctrl", "alt", "f1"]}})
    assert result.isError
    assert "keys.vt-switch" in text_of(result)
    assert "text console" in text_of(result)
    assert data_of(result)["rule_ids"] == ["keys.vt-switch"]


async def check_ask_approved_elsewhere(session: ClientSession, db: Path) -> None:
    approver = start_approver(db, approve=True)
    try:
        result = await session.call_tool("computer", {"action": {
            "type": "type", "text": "rm -rf ~/keep-mcp\n"}, "screenshot": False})
    finally:
        output, _ = approver.communicate(timeout=60)
    assert approver.returncode == 0, output
    assert not result.isError, text_of(result)
    assert data_of(result)["status"] == "done"


async def check_ask_times_out(session: ClientSession) -> None:
    result = await session.call_tool("computer", {"action": {
        "type": "type", "text": "sudo true\n"}, "screenshot": False})
    assert result.isError
    text = text_of(result)
    assert "shell.destructive" in text
    assert "nobody answered" in text
    assert data_of(result)["effect"] == "ask"


async def full_desktop_session(session: ClientSession, db: Path) -> str:
    """Everything the issue asks to see in one session; returns the audit session id."""
    listed = await session.list_tools()
    assert {t.name for t in listed.tools} == ALL_TOOLS
    await check_screenshot_limits(session)
    await check_typing_shows(session)
    await check_denied(session)
    await check_ask_approved_elsewhere(session, db)
    await check_ask_times_out(session)
    about = data_of(await session.call_tool("session", {}))
    return str(about["session_id"])


def check_audit(db: Path, session_id: str, client: str) -> None:
    with AuditLog.open(db) as log:
        steps = log.steps(session_id)
        approvals = log.approvals(session_id)
        record = log.get_session(session_id)
    assert record.planner == "mcp"
    assert record.model.startswith(client)
    assert all(s.proposed_raw["mcp"]["client"].startswith(client) for s in steps)
    tools = {s.proposed_raw["mcp"]["tool"] for s in steps}
    assert {"screenshot", "computer", "wait_for_text", "read_screen"} <= tools
    denied = [s for s in steps if s.rule_ids == ("keys.vt-switch",)]
    assert len(denied) == 1
    assert [(a.status, a.answer.channel if a.answer else None) for a in approvals] == [
        ("approved", "test-approver"), ("expired", None)]
    assert "chain intact" in verify_audit(db)
