"""The step pipeline on the fake sandbox: real policy, real SQLite audit log."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.approvals import ApprovalRequest, BrokerApprover
from agent.interrupts import Interrupted
from agent.loop import AgentLoop, LoopConfig
from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn
from audit.log import AuditLog
from audit.records import ApprovalAnswer, Usage
from audit.verify import verify
from policies import load_profile
from sandbox.actions import (
    Action,
    ActionError,
    Click,
    Key,
    Screenshot,
    TypeText,
    Wait,
    parse_action,
    validate_for_screen,
)
from sandbox.base import Frame, Size
from sandbox.fake import FakeSandbox


class ListPlanner:
    """Proposes the given actions one turn at a time and keeps what came back."""

    name = "list"
    model = "test"

    def __init__(self, proposals: list[ProposedAction], usage: Usage | None = None) -> None:
        self.proposals = list(proposals)
        self.outcomes: list[ActionOutcome] = []
        self.usage = usage or Usage()

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        self.outcomes.extend(outcomes)
        if not self.proposals:
            return Turn(finished="done", message="all proposed")
        return Turn(actions=[self.proposals.pop(0)], usage=self.usage)


def proposals(*actions: Action) -> list[ProposedAction]:
    return [ProposedAction(action=a) for a in actions]


class AnswerWith:
    """An approver that answers through the broker like a human at another terminal."""

    def __init__(self, log: AuditLog, approved: bool, scope: str = "once") -> None:
        self.broker = BrokerApprover(log)
        self.log, self.approved, self.scope = log, approved, scope
        self.requests: list[ApprovalRequest] = []

    def request(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        self.requests.append(request)
        thread = threading.Thread(target=self._answer, args=(request.step_id,))
        thread.start()
        try:
            return self.broker.request(request)
        finally:
            thread.join()

    def _answer(self, step_id: int) -> None:
        with AuditLog.open(self.log.path) as other:
            for _ in range(200):
                pending = [p for p in other.pending_approvals() if p.step_id == step_id]
                if pending:
                    other.answer_approval(pending[0].id, approved=self.approved,
                                          scope=self.scope,  # type: ignore[arg-type]
                                          approver="alice@test", channel="test")
                    return
                time.sleep(0.01)


def run(tmp_path: Path, planner: ListPlanner, *, approver: Any = None,
        profile: str = "default", config: LoopConfig | None = None) -> tuple[Any, FakeSandbox,
                                                                           AuditLog]:
    log = AuditLog.open(tmp_path / "audit.db")
    box = FakeSandbox(size=Size(640, 400))
    box.start()
    loop = AgentLoop(sandbox=box, planner=planner, policy=load_profile(profile), audit=log,
                     approver=approver or BrokerApprover(log),
                     config=config or LoopConfig(approval_timeout_s=0))
    return loop.run("test task"), box, log


def test_allowed_steps_run_and_every_step_is_logged_with_its_decision(tmp_path: Path) -> None:
    planner = ListPlanner(proposals(TypeText(text="héllo"), Key(keys=["enter"]), Screenshot()))
    summary, box, log = run(tmp_path, planner)
    assert summary.outcome == "done"
    assert box.executed == [TypeText(text="héllo"), Key(keys=["enter"]), Screenshot()]
    steps = log.steps(summary.session_id)
    assert [(s.status, s.decision_effect, s.rule_ids) for s in steps] == [
        ("done", "allow", ("ui.allow",))] * 3
    assert all(s.frame_after_sha256 and log.has_frame(s.frame_after_sha256) for s in steps)
    assert verify(tmp_path / "audit.db").ok


def test_a_risky_step_without_an_answer_is_denied_and_never_runs(tmp_path: Path) -> None:
    planner = ListPlanner(proposals(TypeText(text="rm -rf ~/keep\n"), TypeText(text="ls\n")))
    summary, box, log = run(tmp_path, planner)
    assert box.executed == [TypeText(text="ls\n")]
    assert planner.outcomes[0].status == "denied"
    assert "not approve" in planner.outcomes[0].message
    step = log.steps(summary.session_id)[0]
    assert (step.decision_effect, step.status, step.rule_ids) == (
        "ask", "denied", ("shell.command.destructive", "shell.destructive"))


def test_an_approved_step_runs_and_the_log_names_the_approver(tmp_path: Path) -> None:
    planner = ListPlanner(proposals(TypeText(text="rm -rf ~/keep\n")))
    log = AuditLog.open(tmp_path / "audit.db")
    approver = AnswerWith(log, approved=True)
    summary, box, log = run(tmp_path, planner, approver=approver,
                            config=LoopConfig(approval_timeout_s=5))
    assert box.executed == [TypeText(text="rm -rf ~/keep\n")]
    [approval] = log.approvals(summary.session_id)
    assert approval.answer is not None
    assert (approval.answer.approved, approval.answer.approver) == (True, "alice@test")


def test_allow_for_session_is_scoped_to_the_rule_and_logged(tmp_path: Path) -> None:
    planner = ListPlanner(proposals(TypeText(text="rm -rf a\n"), TypeText(text="rm -rf b\n"),
                                    Key(keys=["alt", "f4"])))
    log = AuditLog.open(tmp_path / "audit.db")
    approver = AnswerWith(log, approved=True, scope="session")
    summary, box, log = run(tmp_path, planner, approver=approver,
                            config=LoopConfig(approval_timeout_s=5))
    # The second rm ran without asking; alt+f4 is another rule and asked again.
    assert TypeText(text="rm -rf b\n") in box.executed
    assert len(approver.requests) == 2
    assert approver.requests[1].action == Key(keys=["alt", "f4"])
    assert [e.kind for e in log.events(summary.session_id)].count("session_grant") == 2


def test_a_denied_answer_keeps_the_step_from_running(tmp_path: Path) -> None:
    planner = ListPlanner(proposals(TypeText(text="sudo reboot\n")))
    log = AuditLog.open(tmp_path / "audit.db")
    summary, box, log = run(tmp_path, planner, approver=AnswerWith(log, approved=False),
                            config=LoopConfig(approval_timeout_s=5))
    assert box.executed == []
    assert log.steps(summary.session_id)[0].status == "denied"


def test_invalid_actions_go_back_to_the_planner_and_never_reach_the_sandbox(
        tmp_path: Path) -> None:
    planner = ListPlanner([ProposedAction(action=Click(x=639, y=400)),
                           ProposedAction(action=None, error="model said 'clikc'")])
    summary, box, log = run(tmp_path, planner)
    assert box.executed == []
    assert [o.status for o in planner.outcomes] == ["invalid", "invalid"]
    assert "outside the 640x400 screen" in planner.outcomes[0].message
    assert [s.status for s in log.steps(summary.session_id)] == ["invalid", "invalid"]


def test_a_planner_can_escalate_to_ask_but_never_approve(tmp_path: Path) -> None:
    planner = ListPlanner([ProposedAction(action=Click(x=5, y=5), force_ask="safety check")])
    summary, box, _ = run(tmp_path, planner)
    assert box.executed == []
    assert summary.denied == 1


def test_the_cost_budget_stops_the_run_cleanly(tmp_path: Path) -> None:
    planner = ListPlanner(proposals(*[Screenshot()] * 10), usage=Usage(cost_usd=0.4))
    summary, box, log = run(tmp_path, planner, config=LoopConfig(max_cost_usd=1.0))
    assert summary.outcome == "budget"
    assert len(box.executed) == 2
    assert log.get_session(summary.session_id).outcome == "budget"


_action_data = st.one_of(
    st.builds(lambda x, y: {"type": "click", "x": x, "y": y},
              st.integers(-10, 2000), st.integers(-10, 2000)),
    st.builds(lambda t: {"type": "type", "text": t}, st.text(max_size=30)),
    st.builds(lambda k: {"type": "key", "keys": k},
              st.lists(st.sampled_from(["ctrl", "alt", "f1", "q", "nope", "enter"]), max_size=3)),
    st.builds(lambda p: {"type": "drag", "path": p}, st.lists(
        st.fixed_dictionaries({"x": st.integers(0, 900), "y": st.integers(0, 900)}), max_size=3)),
)


def _propose(data: dict[str, Any]) -> ProposedAction:
    try:
        return ProposedAction(action=parse_action(data), raw=data)
    except ActionError as exc:
        return ProposedAction(action=None, error=str(exc), raw=data)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_action_data, min_size=1, max_size=6))
def test_no_action_that_fails_validation_ever_reaches_the_sandbox(
        tmp_path_factory: pytest.TempPathFactory, batch: list[dict[str, Any]]) -> None:
    tmp_path = tmp_path_factory.mktemp("prop")
    planner = ListPlanner([_propose(d) for d in batch])
    summary, box, _ = run(tmp_path, planner)
    for action in box.executed:
        validate_for_screen(action, 640, 400)
    invalid = [o for o in planner.outcomes if o.status == "invalid"]
    assert summary.invalid == len(invalid)
    assert len(box.executed) + summary.invalid + summary.denied == len(batch)


def test_a_stop_request_ends_the_run_as_interrupted_before_the_next_step(tmp_path: Path) -> None:
    planner = ListPlanner(proposals(Screenshot(), Screenshot(), Screenshot()))
    log = AuditLog.open(tmp_path / "audit.db")
    box = FakeSandbox(size=Size(640, 400))
    box.start()
    loop = AgentLoop(sandbox=box, planner=planner, policy=load_profile("default"), audit=log,
                     approver=BrokerApprover(log), should_stop=lambda: len(box.executed) >= 1)
    summary = loop.run("stop me")
    assert (summary.outcome, len(box.executed)) == ("interrupted", 1)
    assert log.get_session(summary.session_id).outcome == "interrupted"


class StoppedAsAnIntentCommits(AuditLog):
    """The real log, with a stop landing just as the second step's intent commits: where a
    signal that arrived during the commit's fsync is raised, before the id comes back."""

    def record_intent(self, session_id: str, **fields: Any) -> int:
        step_id = super().record_intent(session_id, **fields)
        if fields["index"] == 1:
            raise Interrupted("SIGTERM")
        return step_id


def test_a_stop_as_a_step_intent_commits_leaves_no_step_pending(tmp_path: Path) -> None:
    planner = ListPlanner(proposals(Screenshot(), Wait(seconds=5)))
    with StoppedAsAnIntentCommits.open(tmp_path / "audit.db") as log:
        box = FakeSandbox(size=Size(640, 400))
        box.start()
        loop = AgentLoop(sandbox=box, planner=planner, policy=load_profile("default"),
                         audit=log, approver=BrokerApprover(log))
        summary = loop.run("stop me")
        steps = log.steps(summary.session_id)
    assert (summary.outcome, summary.reason) == ("interrupted", "interrupted by SIGTERM")
    assert [s.status for s in steps] == ["done", "interrupted"]
    assert "interrupted by SIGTERM" in (steps[1].error or "")
    assert box.executed == [Screenshot()]
    assert verify(tmp_path / "audit.db").ok


class StoppedAtTheFirstLook(FakeSandbox):
    def screenshot(self) -> Frame:
        raise Interrupted("SIGHUP (the terminal closed)")


def test_a_stop_during_the_first_look_ends_the_session_it_recorded(tmp_path: Path) -> None:
    with AuditLog.open(tmp_path / "audit.db") as log:
        box = StoppedAtTheFirstLook(size=Size(640, 400))
        box.start()
        loop = AgentLoop(sandbox=box, planner=ListPlanner([]), policy=load_profile("default"),
                         audit=log, approver=BrokerApprover(log))
        with pytest.raises(Interrupted):
            loop.run("stop me")
        [session] = log.list_sessions()
    assert (session.outcome, session.reason) == (
        "interrupted", "interrupted by SIGHUP (the terminal closed)")


class ChangesTheScreenFirst(AnswerWith):
    """Approves, but the first time the screen changes under the target meanwhile."""

    def __init__(self, log: AuditLog, box: FakeSandbox) -> None:
        super().__init__(log, approved=True)
        self.box = box

    def request(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        if not self.requests:
            self.box.execute(TypeText(text="a new dialog appeared"))
        return super().request(request)


def test_an_approval_is_asked_again_when_the_target_changed_meanwhile(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path / "audit.db")
    box = FakeSandbox(size=Size(640, 400))
    box.start()
    approver = ChangesTheScreenFirst(log, box)
    loop = AgentLoop(sandbox=box, planner=ListPlanner(proposals(TypeText(text="sudo ls\n"))),
                     policy=load_profile("default"), audit=log, approver=approver,
                     config=LoopConfig(approval_timeout_s=5))
    summary = loop.run("stale approval")
    assert len(approver.requests) == 2
    assert approver.requests[0].frame.sha256 != approver.requests[1].frame.sha256
    assert box.executed[-1] == TypeText(text="sudo ls\n")
    assert "approval_stale" in [e.kind for e in log.events(summary.session_id)]
