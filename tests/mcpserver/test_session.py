"""The MCP session's loop in-process, on the fake sandbox: requests, tickets, closing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agent.mcp.requests import ActRequest, FindTextRequest, Reply, Settled, ToolRequest
from agent.mcp.run import open_run
from agent.mcp.screen import ScreenSpace
from agent.mcp.session import DesktopSession, SessionEnded, SessionOptions
from agent.perception.screen import TextElement
from agent.planners.base import ActionOutcome, ProposedAction
from agent.settings import Settings
from audit.log import AuditLog
from sandbox.actions import Click, Wait
from sandbox.base import Frame
from sandbox.fake import FakeSandbox

WAIT_S = 30


def _settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, db=tmp_path / "audit.db", sandbox="fake", perception=False)


@contextmanager
def _desktop(tmp_path: Path, *, approval_timeout_s: float = 0) -> Iterator[DesktopSession]:
    settings = _settings(tmp_path)
    options = SessionOptions(task="MCP session for tests", max_turns=50,
                             approval_timeout_s=approval_timeout_s, action_deadline_s=10)
    desktop = DesktopSession(lambda: open_run(settings, watch=False, note=lambda _: None),
                             options, client="pytest 1")
    try:
        yield desktop
    finally:
        desktop.close()


Build = Callable[[ScreenSpace], ToolRequest]


def _act(action: dict[str, Any]) -> Build:
    return lambda space: ActRequest("computer", {"action": action}, space, action=action)


def _reply(desktop: DesktopSession, build: Build, tool: str = "computer") -> Reply:
    ticket = desktop.submit(build, tool)
    return ticket.future.result(timeout=WAIT_S)


def _no_text(frame: Frame) -> list[TextElement]:
    return []


def _save_button(frame: Frame) -> list[TextElement]:
    return [TextElement("Save", 100, 200, 160, 220, 0.99)]


def test_a_call_runs_as_an_audited_step_naming_the_client(tmp_path: Path) -> None:
    with _desktop(tmp_path) as desktop:
        reply = _reply(desktop, _act({"type": "click", "x": 10, "y": 20}))
        session_id = desktop.session_id
    assert not reply.error, reply.text
    with AuditLog.open(tmp_path / "audit.db") as log:
        (step,) = log.steps(session_id)
        (record,) = log.list_sessions()
    assert step.action == Click(x=10, y=20)
    assert step.proposed_raw["mcp"] == {"client": "pytest 1", "tool": "computer",
                                        "arguments": {"action": {"type": "click", "x": 10,
                                                                 "y": 20}}, "ticket": "t1"}
    assert record.outcome == "done"


def test_click_text_clicks_the_centre_of_the_text_it_found(tmp_path: Path) -> None:
    with _desktop(tmp_path) as desktop:
        reply = _reply(desktop, lambda space: FindTextRequest(
            "click_text", {"text": "Save"}, space, _save_button, text="Save", timeout_s=5,
            clock=time.monotonic, click=("left", 2)), "click_text")
        box = desktop.sandbox
    assert not reply.error, reply.text
    assert isinstance(box, FakeSandbox)
    clicks = [a for a in box.executed if isinstance(a, Click)]
    assert clicks == [Click(x=130, y=210, count=2)]


def test_wait_for_text_gives_up_after_its_timeout_with_each_look_audited(tmp_path: Path) -> None:
    with _desktop(tmp_path) as desktop:
        started = time.monotonic()
        reply = _reply(desktop, lambda space: FindTextRequest(
            "wait_for_text", {"text": "Done"}, space, _no_text, text="Done", timeout_s=0.6,
            clock=time.monotonic), "wait_for_text")
        elapsed = time.monotonic() - started
        session_id = desktop.session_id
    assert reply.error
    assert reply.data["status"] == "not_found"
    assert "'Done' is not on screen after 0.6 s" in reply.text
    assert elapsed >= 0.6
    with AuditLog.open(tmp_path / "audit.db") as log:
        kinds = [s.action_type for s in log.steps(session_id)]
    assert kinds[0] == "screenshot"
    assert set(kinds[1:]) == {"wait"}
    assert len(kinds) >= 2


def test_closing_the_session_denies_a_pending_approval_at_once(tmp_path: Path) -> None:
    with _desktop(tmp_path, approval_timeout_s=120) as desktop:
        ticket = desktop.submit(_act({"type": "type", "text": "rm -rf ~/keep\n"}), "computer")
        give_up = time.monotonic() + WAIT_S
        while ticket.approval is None and time.monotonic() < give_up:
            time.sleep(0.02)
        assert ticket.approval is not None
        assert ticket.approval.rule_ids == ("shell.destructive",)
        started = time.monotonic()
        desktop.close()
        closed_in = time.monotonic() - started
        reply = ticket.future.result(timeout=0)
        with pytest.raises(SessionEnded):
            desktop.submit(_act({"type": "screenshot"}), "computer")
    assert closed_in < 10
    assert reply.error
    assert "nobody answered" in reply.text


def test_screen_space_is_fixed_when_the_desktop_starts(tmp_path: Path) -> None:
    with _desktop(tmp_path) as desktop:
        space = desktop.ensure_started()
    assert isinstance(space, ScreenSpace)
    assert str(space.size) == "1280x800"


def test_looking_for_text_backs_off_so_long_waits_take_few_steps() -> None:
    space = ScreenSpace(FakeSandbox().size)
    now = [0.0]
    request = FindTextRequest("wait_for_text", {}, space, _no_text, text="Done", timeout_s=10,
                              clock=lambda: now[0])
    with FakeSandbox() as box:
        frame = box.screenshot()
    request.start(frame)
    pauses = []
    settled = Settled(outcome=ActionOutcome(action=None, status="done"), frame=frame,
                      trace=None)
    while isinstance(step := request.advance(settled), ProposedAction):
        assert isinstance(step.action, Wait)
        pauses.append(step.action.seconds)
        now[0] += step.action.seconds
    assert pauses[:4] == [0.25, 0.5, 1.0, 1.0]
    assert sum(pauses) == pytest.approx(10)
    assert len(pauses) <= 12
