"""Fixtures for the TUI tests: real SQLite audit logs, the fake sandbox, the
script planner and the shipped default policy, driven through Textual's Pilot."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from agent.registry import SandboxInputs
from agent.runs import SandboxFactory
from agent.settings import Settings
from audit.log import AuditLog
from sandbox.base import Sandbox
from sandbox.fake import FakeSandbox
from tui.app import DeskhandApp, TuiOptions
from tui.runner import RunServices
from tui.screens.live import LiveScreen
from tui.store import TuiStore

RISKY_SCRIPT = """\
task: Tidy the home folder
steps:
  - type: "echo hello\\n"
  - click: [400, 300]
  - type: "rm -rf ~/keep\\n"
  - type: "echo after\\n"
"""
RISKY_TEXT = "rm -rf ~/keep\n"
USER = "tester"
TERMINAL = (160, 48)


class FakeSandboxes:
    """A sandbox factory that builds fake sandboxes and keeps them for the test to inspect."""

    def __init__(self) -> None:
        self.made: list[FakeSandbox] = []

    def __call__(self, kind: str, inputs: SandboxInputs) -> Sandbox:
        assert kind == "fake", f"the tests run the fake sandbox, not {kind}"
        box = FakeSandbox(size=inputs.size)
        self.made.append(box)
        return box

    @property
    def typed(self) -> list[str]:
        """Every text the (only) sandbox typed, in order."""
        (box,) = self.made
        return [str(getattr(action, "text", "")) for action in box.executed
                if action.type == "type"]


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``pytest.mark.anyio``) run on asyncio, as Textual does."""
    return "asyncio"


@pytest.fixture
def risky_script(tmp_path: Path) -> Path:
    path = tmp_path / "risky.yaml"
    path.write_text(RISKY_SCRIPT, encoding="utf-8")
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def audit_log(db_path: Path) -> Iterator[AuditLog]:
    with AuditLog.open(db_path) as log:
        yield log


@pytest.fixture
def sandboxes() -> FakeSandboxes:
    return FakeSandboxes()


def make_settings(tmp_path: Path, db_path: Path, *, approval_timeout_s: float = 30.0) -> Settings:
    return Settings(home=tmp_path / "home", db=db_path, sandbox="fake", policy="default",
                    planner="script", approval_timeout_s=approval_timeout_s)


def make_app(log: AuditLog, settings: Settings, *, script: Path | None = None,
             attach: bool = False, sandboxes: SandboxFactory | None = None,
             task: str = "", read_screen_words: bool = False) -> DeskhandApp:
    # The OCR of approval crops is off unless a test is about it: it loads a model.
    options = TuiOptions(settings=settings, attach=attach, script=script, user=USER, task=task,
                         read_screen_words=read_screen_words)
    services = RunServices(make_sandbox=sandboxes or FakeSandboxes())
    return DeskhandApp(options, TuiStore(log), services=services)


async def wait_until(pilot: Pilot[Any], condition: Callable[[], object], *,
                     timeout_s: float = 20.0, what: str = "condition") -> None:
    """Let the app run until ``condition()`` is true; fail after ``timeout_s``."""
    give_up = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def start_run(pilot: Pilot[Any]) -> LiveScreen:
    """Start the task screen's run (Ctrl-S) and wait for its live screen."""
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, LiveScreen), what="live screen")
    live = pilot.app.screen
    assert isinstance(live, LiveScreen)
    return live
