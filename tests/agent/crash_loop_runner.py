"""The real agent loop, run until killed, for the crash test.

A sandbox that marks each action it runs (a file named after the action's
text, written when the action reaches it) stands in for the desktop, so the
test can compare what reached the sandbox with what the audit log holds.

    python crash_loop_runner.py DB MARKER_DIR
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig, SilentReporter
from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn
from audit.log import AuditLog
from policies.engine import load_profile
from sandbox.actions import Action, Key, TypeText
from sandbox.base import ExecResult, Frame, Size
from sandbox.fake import FakeSandbox


class MarkingSandbox(FakeSandbox):
    """The fake desktop, plus a marker file for every action that reaches it."""

    def __init__(self, markers: Path) -> None:
        super().__init__(size=Size(320, 200))
        self.markers = markers

    def execute(self, action: Action, *, settle: bool = True, deadline_s: float = 30.0,
                settle_profile: str | None = None) -> ExecResult:
        if isinstance(action, TypeText):
            (self.markers / action.text).write_text("reached the sandbox")
        return super().execute(action, settle=settle, deadline_s=deadline_s,
                               settle_profile=settle_profile)


class EndlessPlanner:
    """Types PID-step-0, PID-step-1, ... and presses Enter now and then, forever.

    The process id makes every run's texts (and so its markers) its own.
    """

    name = "endless"
    model = "test"

    def __init__(self) -> None:
        self._counter = itertools.count()

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        n = next(self._counter)
        text = f"{os.getpid()}-step-{n}"
        actions: list[ProposedAction] = [ProposedAction(action=TypeText(text=text))]
        if n % 5 == 4:
            actions.append(ProposedAction(action=Key(keys=["enter"])))
        return Turn(actions=actions)


class SaysReady(SilentReporter):
    """Prints "ready" once the session is committed (its first frame is reported after)."""

    def __init__(self) -> None:
        self.said = False

    def on_frame(self, frame: Frame) -> None:
        if not self.said:
            print("ready", flush=True)
            self.said = True


def main(db: str, marker_dir: str) -> None:
    with AuditLog.open(Path(db)) as log, MarkingSandbox(Path(marker_dir)) as box:
        loop = AgentLoop(sandbox=box, planner=EndlessPlanner(), policy=load_profile("default"),
                         audit=log, approver=BrokerApprover(log), reporter=SaysReady(),
                         config=LoopConfig(max_turns=1_000_000, approval_timeout_s=0))
        loop.run("type forever")


if __name__ == "__main__":
    main(*sys.argv[1:3])
