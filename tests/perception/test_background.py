"""Perception off the critical path: a frame is read while the planner plans."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig
from agent.perception.background import BackgroundPerception
from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn
from audit.log import AuditLog
from policies import load_profile
from policies.decision import Triage, TypedFromScreen
from sandbox.actions import Click, TypeText
from sandbox.base import Frame, Size
from sandbox.fake import FakeSandbox

WAIT_S = 10.0


class ObservedReader:
    """An injection reader that notes which frames it started reading, and on what thread."""

    def __init__(self) -> None:
        self.started: dict[str, threading.Event] = {}
        self.threads: set[str] = set()
        self.reads: list[str] = []
        self._lock = threading.Lock()

    def event(self, sha256: str) -> threading.Event:
        with self._lock:
            return self.started.setdefault(sha256, threading.Event())

    def triage(self, task: str) -> Triage | None:
        return None

    def injection_risk(self, frame: Frame, task: str) -> tuple[float, str]:
        self.threads.add(threading.current_thread().name)
        self.reads.append(frame.sha256)
        self.event(frame.sha256).set()
        return 0.0, ""

    def typed_from_screen(self, text: str, frame: Frame, task: str) -> TypedFromScreen | None:
        return None


class WaitsForReading:
    """A planner that only answers once the frame it was shown is being read."""

    name = "waits"
    model = "test"

    def __init__(self, reader: ObservedReader, actions: list[ProposedAction]) -> None:
        self.reader = reader
        self.actions = actions

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        if not self.reader.event(observation.frame.sha256).wait(WAIT_S):
            pytest.fail("the frame was not read while the planner planned")
        if not self.actions:
            return Turn(finished="done", message="done")
        return Turn(actions=[self.actions.pop(0)])


def test_each_frame_is_read_while_the_planner_plans_and_only_once(tmp_path: Path) -> None:
    reader = ObservedReader()
    perception = BackgroundPerception(reader)
    actions = [ProposedAction(action=TypeText(text=f"step {n}")) for n in range(3)] + \
        [ProposedAction(action=Click(x=5, y=5))]
    with AuditLog.open(tmp_path / "audit.db") as log:
        box = FakeSandbox(size=Size(320, 200))
        box.start()
        loop = AgentLoop(sandbox=box, planner=WaitsForReading(reader, actions),
                         policy=load_profile("default"), audit=log,
                         approver=BrokerApprover(log), perceiver=perception,
                         config=LoopConfig(approval_timeout_s=0))
        summary = loop.run("type three steps")
    perception.close()
    assert summary.outcome == "done"
    assert summary.executed == 4
    assert reader.threads == {t for t in reader.threads if t.startswith("perception")}
    assert len(reader.reads) == len(set(reader.reads))  # a frame is read once


def test_a_verdict_asked_for_before_its_read_finished_waits_for_it() -> None:
    release = threading.Event()

    class Slow(ObservedReader):
        def injection_risk(self, frame: Frame, task: str) -> tuple[float, str]:
            super().injection_risk(frame, task)
            release.wait(WAIT_S)
            return 0.7, "slow verdict"

    reader = Slow()
    perception = BackgroundPerception(reader)
    box = FakeSandbox(size=Size(64, 48))
    box.start()
    frame = box.screenshot()
    perception.prefetch(frame, "task")
    assert reader.event(frame.sha256).wait(WAIT_S)
    release.set()
    assert perception.injection_risk(frame, "task") == (0.7, "slow verdict")
    assert reader.reads == [frame.sha256]
    perception.close()
