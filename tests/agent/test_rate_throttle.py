"""max_actions_per_minute throttles: the loop waits (and records it), denying only past a cap.

The loop runs on a simulated clock: every action takes 0.1 s and a wait moves
the clock by what was slept, so minutes of throttling take no real time.
"""

from __future__ import annotations

from pathlib import Path

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig
from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn
from audit.log import AuditLog
from policies import load_profile
from policies.engine import Policy, parse_policy
from policies.rules import rate_wait_s
from sandbox.actions import Key
from sandbox.base import Size
from sandbox.fake import FakeSandbox

STEP_S = 0.1


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def read(self) -> float:
        self.now += STEP_S / 10  # the loop reads the clock about ten times a step
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class KeyPresses:
    """Presses ``count`` keys, one a turn."""

    name = "keys"
    model = "test"

    def __init__(self, count: int) -> None:
        self.left = count

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        if not self.left:
            return Turn(finished="done", message="pressed them all")
        self.left -= 1
        return Turn(actions=[ProposedAction(action=Key(keys=["a"]))])


def policy_text(per_minute: int, cap_s: float) -> bytes:
    return f"""name: rate
budgets:
  max_actions_per_minute: {per_minute}
  max_rate_wait_s: {cap_s}
rules:
  - id: allow.all
    effect: allow
    reason: Everything is allowed here.
""".encode()


def run(tmp_path: Path, count: int, policy: Policy) -> tuple[AuditLog, str, SimulatedClock]:
    log = AuditLog.open(tmp_path / "audit.db")
    box = FakeSandbox(size=Size(320, 200))
    box.start()
    clock = SimulatedClock()
    loop = AgentLoop(sandbox=box, planner=KeyPresses(count), policy=policy,
                     audit=log, approver=BrokerApprover(log),
                     config=LoopConfig(approval_timeout_s=0, max_turns=count + 5),
                     clock=clock.read, sleep=clock.sleep)
    summary = loop.run("press keys")
    return log, summary.session_id, clock


def test_the_default_rate_limit_slows_a_fast_run_down_instead_of_denying(tmp_path: Path) -> None:
    log, session, clock = run(tmp_path, 127, load_profile("default"))
    steps = log.steps(session)
    assert [s.status for s in steps] == ["done"] * 127
    waits = [e for e in log.events(session) if e.kind == "rate_limit_wait"]
    assert len(waits) >= 1
    assert waits[0].data["step_index"] == 120  # the 121st action is the first to wait
    assert sum(clock.slept) >= 0.9 * waits[0].data["wait_s"]


def test_a_wait_past_the_cap_is_denied_by_the_budget(tmp_path: Path) -> None:
    policy = parse_policy(policy_text(5, 10), file="rate.yaml", default_name="rate")
    log, session, clock = run(tmp_path, 7, policy)
    steps = log.steps(session)
    assert [s.status for s in steps][:5] == ["done"] * 5
    assert steps[5].decision_effect == "deny"
    assert steps[5].rule_ids == ("budget.actions_per_minute",)
    assert "cap of 10 s" in (steps[5].decision_reason or "")
    assert not [e for e in log.events(session) if e.kind == "rate_limit_wait"]
    assert clock.slept == []


def test_the_wait_is_until_the_oldest_action_in_the_window_leaves_it() -> None:
    assert rate_wait_s(3, [0.0, 10.0], now=20.0) == 0.0
    assert rate_wait_s(3, [0.0, 10.0, 15.0], now=20.0) == 40.0
    assert rate_wait_s(2, [0.0, 10.0, 15.0], now=20.0) == 50.0
    assert rate_wait_s(3, [-50.0, 10.0, 15.0], now=20.0) == 0.0  # the first left the window
