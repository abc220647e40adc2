"""The live screen says what the desktop may reach, and what the run noted."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from agent.registry import SandboxInputs
from audit.log import AuditLog
from policies.network import NetworkRules, parse_host_pattern
from sandbox.base import Sandbox
from tests.tui.conftest import FakeSandboxes, make_app, make_settings, start_run, wait_until
from tui.screens.live import LiveScreen, network_label

pytestmark = pytest.mark.anyio


def test_the_label_names_the_mode_and_counts_the_lists() -> None:
    allowlist = NetworkRules(mode="allowlist", allow=(parse_host_pattern("a.example"),),
                             deny=(parse_host_pattern("b.example"),))
    assert network_label(NetworkRules()) == "network: off"
    assert network_label(allowlist) == "network: allowlist (1 allowed, 1 denied)"
    assert network_label(allowlist.with_allowed_hosts(["c.example"])) == \
        "network: allowlist (2 allowed, 1 denied)"
    assert network_label(NetworkRules(mode="full")) == "network: full"


async def test_a_run_with_full_network_shows_it_in_the_live_screen(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, risky_script: Path,
        sandboxes: FakeSandboxes) -> None:
    settings = make_settings(tmp_path, db_path).with_overrides(network=True)
    app = make_app(audit_log, settings, script=risky_script, sandboxes=sandboxes)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, LiveScreen), what="live screen")
        label = app.screen.query_one("#network-mode", Static)
        assert str(label.render()) == "network: full"
        assert label.display
        await pilot.press("ctrl+q")
    (session,) = audit_log.list_sessions()
    assert session.extra["egress"]["mode"] == "full"  # the fake desktop itself has none


class AnyKindSandboxes(FakeSandboxes):
    """Fake desktops for whichever kind the run resolves ``auto`` to."""

    def __call__(self, kind: str, inputs: SandboxInputs) -> Sandbox:
        self.kinds.append(kind)
        return super().__call__("fake", inputs)

    def __init__(self) -> None:
        super().__init__()
        self.kinds: list[str] = []


async def test_the_run_s_notes_stay_in_view_under_its_status(
        tmp_path: Path, db_path: Path, audit_log: AuditLog, risky_script: Path) -> None:
    # `auto` makes the run say which desktop it chose and why: the TUI shows that
    # note (before, it went nowhere), once, beside the network label.
    settings = make_settings(tmp_path, db_path).with_overrides(sandbox="auto")
    sandboxes = AnyKindSandboxes()
    app = make_app(audit_log, settings, script=risky_script, sandboxes=sandboxes)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await start_run(pilot)
        await wait_until(pilot, lambda: screen.notes, what="the run's note")
        notes = screen.query_one("#run-notes", Static)
        (kind,) = sandboxes.kinds
        assert str(notes.render()).startswith(f"sandbox: {kind} " if kind == "docker"
                                              else "sandbox: local Xvfb (")
        assert notes.display
        await pilot.press("ctrl+q")
