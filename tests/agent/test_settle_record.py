"""Every step records which settle profile it waited with, and how long."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig
from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn
from audit.log import AuditLog
from policies import load_profile
from sandbox.actions import Action, Key
from sandbox.base import ExecResult, Size
from sandbox.fake import FakeSandbox


class ProfiledSandbox(FakeSandbox):
    """The fake desktop, reporting the settle profile it was asked for as a real one does."""

    def __init__(self) -> None:
        super().__init__(size=Size(320, 200))
        self.profiles: list[str | None] = []

    def execute(self, action: Action, *, settle: bool = True, deadline_s: float = 30.0,
                settle_profile: str | None = None) -> ExecResult:
        self.profiles.append(settle_profile)
        result = super().execute(action, settle=settle, deadline_s=deadline_s)
        return replace(result, settle=replace(result.settle, profile=settle_profile or "",
                                              settle_ms=12.5, reaction_ms=3.0))


class TwoKeys:
    name = "keys"
    model = "test"

    def __init__(self) -> None:
        self.left = 2

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        if not self.left:
            return Turn(finished="done")
        self.left -= 1
        return Turn(actions=[ProposedAction(action=Key(keys=["a"]))])


def test_the_loop_settles_with_its_planners_profile_and_logs_the_wait(tmp_path: Path) -> None:
    box = ProfiledSandbox()
    box.start()
    with AuditLog.open(tmp_path / "audit.db") as log:
        loop = AgentLoop(sandbox=box, planner=TwoKeys(), policy=load_profile("default"),
                         audit=log, approver=BrokerApprover(log),
                         config=LoopConfig(approval_timeout_s=0, settle_profile="model"))
        summary = loop.run("press two keys")
        steps = log.steps(summary.session_id)
    assert box.profiles == ["model", "model"]
    outputs = [s.output or {} for s in steps]
    assert [o["settle"]["profile"] for o in outputs] == ["model", "model"]
    assert all(o["settle"]["waited_ms"] == 12.5 for o in outputs)
    assert all(s.timings_ms["settle_ms"] == 12.5 for s in steps)


def test_script_planners_settle_fast_and_model_planners_settle_for_late_drawing() -> None:
    from agent.registry import PLANNERS

    assert PLANNERS.get("script").settle_profile == "fast"
    assert {PLANNERS.get(name).settle_profile for name in ("anthropic", "openai", "openai-cua")} \
        == {"model"}
