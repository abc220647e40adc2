"""An MCP client's click at coordinates is judged by the element under it, as a model
planner's is in ``deskhand run``: on "Delete" the default profile asks
(``ui.click.consequential``), the reply names the rule and the element, and the audit
step records the target.

The real ``mcp`` client SDK: over stdio against ``deskhand mcp`` in a subprocess (the
fake desktop, the real OCR: the default ``--parser ocr``), and in-process over the SDK's
memory streams, where the fake desktop's accessibility tree (``--parser a11y``) shows a
dialog's buttons.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.shared.memory import create_connected_server_and_client_session

from agent import runs
from agent.mcp.run import open_run
from agent.mcp.server import ServerOptions, build_server
from agent.mcp.session import Desktops, DesktopSession, SessionOptions
from agent.mcp.tools import granted_tools
from agent.registry import SandboxInputs
from agent.settings import Settings
from audit.log import AuditLog
from policies.decision import TargetElement
from sandbox.actions import Click
from sandbox.base import Sandbox
from sandbox.fake import FakeSandbox
from tests.agent.test_click_targets import CANCEL, DELETE, dialog_desktop
from tests.mcpserver.conftest import data_of, start_approver, stdio_session, text_of, wait_for

pytestmark = pytest.mark.anyio


async def click(session: ClientSession, x: int, y: int) -> Any:
    return await session.call_tool("computer", {
        "action": {"type": "click", "x": x, "y": y}, "screenshot": False})


def centre_of(box: list[int]) -> tuple[int, int]:
    return (box[0] + box[2]) // 2, (box[1] + box[3]) // 2


async def test_a_click_on_the_word_delete_is_asked_about_and_the_reply_names_rule_and_word(
        tmp_path: Path, db_path: Path) -> None:
    args = ["--sandbox", "fake", "--db", str(db_path), "--approval-timeout", "60"]
    async with stdio_session(args, tmp_path / "server.log") as session:
        typed = await session.call_tool("computer", {
            "action": {"type": "type", "text": "Delete"}, "screenshot": False})
        assert not typed.isError, text_of(typed)
        read = data_of(await session.call_tool("read_screen", {}))
        (word,) = [e for e in read["elements"] if e["text"] == "Delete"]
        approver = start_approver(db_path, approve=False)
        refused = await click(session, *centre_of(word["box"]))
        if data_of(refused)["status"] == "approval_pending":  # the call's wait ran out first
            refused = await until_answered(session, data_of(refused)["ticket"])
        approver.communicate(timeout=60)
        session_id = data_of(await session.call_tool("session", {}))["session_id"]

    assert refused.isError
    assert "rule ui.click.consequential" in text_of(refused)
    assert "(text 'Delete')" in text_of(refused)
    assert "tester@other-process denied it" in text_of(refused)
    answer = data_of(refused)
    assert answer["rule_ids"] == ["ui.click.consequential"]
    assert (answer["target_element"]["name"], answer["target_element"]["source"]) == (
        "Delete", "ocr")
    with AuditLog.open(db_path) as log:
        step = [s for s in log.steps(session_id) if isinstance(s.action, Click)][-1]
        (approval,) = log.approvals(session_id)
    assert (step.decision_effect, step.status) == ("ask", "denied")
    assert isinstance(step.target_element, TargetElement)
    assert (step.target_element.role, step.target_element.name) == ("text", "Delete")
    assert approval.summary.endswith("on text 'Delete'")  # what the approval card shows


# -- in-process, the tree -----------------------------------------------------------


@contextmanager
def dialog_server(tmp_path: Path, made: list[FakeSandbox]) -> Iterator[Any]:
    """``deskhand mcp --parser a11y --sandbox fake`` in this process, the desktop showing a
    "Delete 3 files?" dialog (its accessibility tree)."""
    settings = Settings(home=tmp_path, db=tmp_path / "audit.db", sandbox="fake",
                        parser="a11y", approval_timeout_s=60)

    def make_sandbox(kind: str, inputs: SandboxInputs) -> Sandbox:
        made.append(dialog_desktop())
        return made[-1]

    def opened() -> Any:
        return open_run(settings, watch=False, note=lambda _text: None,
                        services=runs.RunServices(make_sandbox=make_sandbox))

    def make_desktop(client: str) -> DesktopSession:
        options = SessionOptions(task="MCP session for tests", max_turns=20,
                                 approval_timeout_s=60, action_deadline_s=10)
        return DesktopSession(opened, options, client=client)

    desktops = Desktops()
    options = ServerOptions(tools=granted_tools("act", perception=False), approval_wait_s=1.0,
                            attach_hint="", read_text=None)
    try:
        yield build_server(options, make_desktop, desktops)
    finally:
        desktops.close_all()


@asynccontextmanager
async def connected(server: Any) -> AsyncIterator[ClientSession]:
    async with create_connected_server_and_client_session(server) as session:
        yield session


async def until_a_human_is_asked(session: ClientSession, reply: Any) -> dict[str, Any]:
    """The ticket's data once its step waits for a human (the first step also starts the
    desktop and loads the injection guard's OCR, which may outlast the call's wait)."""
    for _ in range(120):
        ticket = data_of(reply)
        if ticket["status"] != "running":
            assert ticket["status"] == "approval_pending", text_of(reply)
            return ticket
        reply = await session.call_tool("await_approval", {"ticket": ticket["ticket"]})
    raise AssertionError(f"the click never waited for a human: {text_of(reply)}")


async def until_answered(session: ClientSession, ticket: str) -> Any:
    """The reply once the human's answer is in (the approver is a process of its own,
    which may start after a call's wait has passed)."""
    for _ in range(120):
        reply = await session.call_tool("await_approval", {"ticket": ticket})
        if data_of(reply)["status"] != "approval_pending":
            return reply
    raise AssertionError(f"the approval was never answered: {text_of(reply)}")


def element_readers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("elements")}


async def test_with_the_tree_a_pending_approval_names_the_button_and_cancel_runs(
        tmp_path: Path) -> None:
    made: list[FakeSandbox] = []
    before = element_readers()
    with dialog_server(tmp_path, made) as server:
        async with connected(server) as session:
            pending = await click(session, 780, 505)
            ticket = await until_a_human_is_asked(session, pending)
            approver = start_approver(tmp_path / "audit.db", approve=False)
            refused = await until_answered(session, ticket["ticket"])
            approver.communicate(timeout=60)
            cancelled = await click(session, 600, 505)
            session_id = data_of(await session.call_tool("session", {}))["session_id"]
            assert element_readers() - before, "the session reads elements on its own thread"
    # Closing the session closed its element finder: its reading thread ends.
    wait_for(lambda: not element_readers() - before, what="the element reader to end")

    assert ticket["summary"].endswith("on push button 'Delete'")
    assert ticket["rule_ids"] == ["ui.click.consequential"]
    assert refused.isError
    assert "(push button 'Delete')" in text_of(refused)
    assert data_of(refused)["target_element"]["box"] == [700, 480, 860, 530]
    assert not cancelled.isError, text_of(cancelled)
    assert "on push button 'Cancel'" in text_of(cancelled)
    assert made[0].executed == [Click(x=600, y=505)]  # Delete never ran
    with AuditLog.open(tmp_path / "audit.db") as log:
        clicks = [s for s in log.steps(session_id) if isinstance(s.action, Click)]
    assert [(s.status, s.target_element) for s in clicks] == [("denied", DELETE),
                                                              ("done", CANCEL)]

