"""The second gate on a real desktop: a command that reaches the terminal's bash by a
route the first gate cannot see (typed by a script the test starts in the desktop) is
still judged by the run's policy, refused when it is not allowed, and recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig
from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn
from audit.log import AuditLog
from policies.engine import load_profile
from sandbox.actions import Key, TypeText, Wait
from sandbox.local import LocalSandbox
from tests.sandbox.conftest import wait_until

pytestmark = pytest.mark.x11

BEHIND_THE_AGENTS_BACK = "trap - DEBUG; rm -rf ~/keep; touch ~/ok\n"


class TerminalThenScriptPlanner:
    """Opens a terminal, types one command itself, then lets a script type behind its back."""

    name = "terminal-then-script"
    model = "test"

    def __init__(self, box: LocalSandbox) -> None:
        self.box = box
        self.stage = "open"

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        if self.stage == "open":
            self.stage = "focus"
            return Turn(actions=[ProposedAction(action=Key(keys=["ctrl", "alt", "t"]))])
        if self.stage == "focus":
            if observation.frame.window_title != "xterm":
                return Turn(actions=[ProposedAction(action=Wait(seconds=0.2))])
            self.stage = "type"
            return Turn(actions=[ProposedAction(action=TypeText(text="touch ~/typed\n"))])
        if self.stage == "type":
            wait_until(lambda: self._exists("typed"), what="the agent's own command to run")
            self.stage = "script"
            typed = self.box.check(["xdotool", "type", "--delay", "10", BEHIND_THE_AGENTS_BACK])
            assert typed.exit_code == 0, typed.stderr
            wait_until(lambda: self._exists("ok"), what="the script's last command to run")
            return Turn(actions=[ProposedAction(action=Wait(seconds=0.1))])
        return Turn(finished="done")

    def _exists(self, name: str) -> bool:
        return self.box.check(["test", "-e", name]).exit_code == 0


def test_a_command_typed_behind_the_agents_back_is_judged_refused_and_recorded(
        tmp_path: Path) -> None:
    with LocalSandbox() as box, AuditLog.open(tmp_path / "audit.db") as log:
        if not box.isolated:
            pytest.skip("the gate needs bubblewrap (its own loopback and a read-only bashrc)")
        assert box.check(["mkdir", "-p", "keep/sub"]).exit_code == 0
        loop = AgentLoop(sandbox=box, planner=TerminalThenScriptPlanner(box),
                         policy=load_profile("default"), audit=log,
                         approver=BrokerApprover(log), config=LoopConfig(approval_timeout_s=0))
        summary = loop.run("open a terminal")
        kept = box.check(["test", "-d", "keep/sub"]).exit_code == 0
        events = [e.data for e in log.events(summary.session_id) if e.kind == "shell_gate"]

    assert summary.outcome == "done", summary.reason
    assert kept, "the script's rm ran"
    seen = {event["command"]: event for event in events}
    assert _verdict(seen["touch ~/typed"]) == (True, "allow", [])
    assert seen["touch ~/typed"]["reason"] == "part of a line the run let through"
    assert _verdict(seen["trap - DEBUG"]) == (False, "deny", ["shell.gate-tamper"])
    assert _verdict(seen["rm -rf ~/keep"]) == (
        False, "ask", ["shell.command.destructive", "shell.destructive"])
    assert "none can be asked here" in seen["rm -rf ~/keep"]["reason"]
    assert _verdict(seen["touch ~/ok"]) == (True, "allow", ["ui.allow"])


def _verdict(event: dict[str, Any]) -> tuple[bool, str, list[str]]:
    return event["ran"], event["effect"], event["rule_ids"]
