"""The loop hands every new frame to the frame guard before anyone else sees it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig, StepReport
from agent.perception.ocr import OcrScreenParser, RapidOcrReader
from agent.perception.redaction import MARK, FrameRedactor
from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn
from audit.log import AuditLog
from policies.engine import load_profile
from sandbox.actions import Action, TypeText
from sandbox.base import Frame
from sandbox.fake import FakeSandbox
from sandbox.secrets import SecretSandbox, SecretValues

VALUE = "plum-harbor-7731-quartz"


class _ListPlanner:
    """Proposes the given actions one per turn and keeps what it was shown."""

    name = "list"
    model = "list"

    def __init__(self, actions: list[Action]) -> None:
        self._actions = iter(actions)
        self.seen: list[Frame] = []
        self.outcome_frames: list[Frame] = []

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        self.seen.append(observation.frame)
        self.outcome_frames += [o.frame for o in outcomes if o.frame is not None]
        action = next(self._actions, None)
        return Turn(finished="done") if action is None else \
            Turn(actions=[ProposedAction(action=action)])


class _Frames:
    def __init__(self) -> None:
        self.shown: list[Frame] = []

    def on_step(self, report: StepReport) -> None:
        pass

    def on_turn(self, turn: Turn) -> None:
        pass

    def on_frame(self, frame: Frame) -> None:
        self.shown.append(frame)


def test_stored_shown_and_planned_frames_are_all_redacted(tmp_path: Path) -> None:
    reader = RapidOcrReader.load(threads=2)
    redactor = FrameRedactor(OcrScreenParser(reader), secrets=[VALUE])
    planner = _ListPlanner([TypeText(text="export TOKEN={{secret:TOKEN}}"),
                            TypeText(text=" ok")])
    shown = _Frames()
    db = tmp_path / "a.db"
    with AuditLog.open(db, redact=[VALUE]) as log, FakeSandbox() as fake:
        box = SecretSandbox(fake, SecretValues({"TOKEN": VALUE}))
        loop = AgentLoop(sandbox=box, planner=planner, policy=load_profile("default"),
                         audit=log, approver=BrokerApprover(log), reporter=shown,
                         frame_guard=redactor, config=LoopConfig(approval_timeout_s=0))
        summary = loop.run("type a token")
        typed = fake.typed_text
        steps = log.steps(summary.session_id)
    redactor.close()
    with sqlite3.connect(db) as conn:
        stored = {row[0] for row in conn.execute("SELECT sha256 FROM blobs")}

    assert summary.outcome == "done", summary.reason
    assert VALUE in typed  # the desktop got the value
    parser = OcrScreenParser(reader)
    frames = {f.sha256: f for f in [*shown.shown, *planner.seen, *planner.outcome_frames]}
    assert set(frames) == stored
    readings = [" ".join(e.text for e in parser.parse_full(f)) for f in frames.values()]
    assert not any("harbor" in text or "7731" in text for text in readings)
    assert any(MARK in text for text in readings)
    assert steps[0].secret
    assert steps[0].output
    assert steps[0].output["redacted"]
