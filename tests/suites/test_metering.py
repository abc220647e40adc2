"""The goal planner's meter: model time, tokens, cost and the finish it claimed."""

from __future__ import annotations

from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn
from agent.suites.metering import MeteredPlanner
from audit.records import Usage
from sandbox.actions import TypeText
from sandbox.fake import FakeSandbox


class _TwoTurns:
    name = "scripted"
    model = "m"

    def __init__(self) -> None:
        self.calls = 0

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        self.calls += 1
        if self.calls == 1:
            return Turn(actions=[ProposedAction(action=TypeText(text="x"))],
                        usage=Usage(input_tokens=100, output_tokens=10, cache_read_tokens=50,
                                    cost_usd=0.25))
        return Turn(finished="done", usage=Usage(input_tokens=7, output_tokens=3,
                                                 cost_usd=0.5))


class _Clock:
    """Each reading is 0.75 s after the last: a turn (read before and after) takes 0.75 s."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.75
        return self.now


def test_the_meter_adds_up_turns_and_keeps_the_claimed_finish() -> None:
    planner = MeteredPlanner(_TwoTurns(), clock=_Clock())
    with FakeSandbox() as box:
        seen = Observation(frame=box.screenshot(), task="t", step_index=0)
        planner.next_turn(seen, [])
        assert planner.meter.claimed == ""
        planner.next_turn(seen, [])
    meter = planner.meter
    assert (meter.turns, meter.tokens_in, meter.tokens_out) == (2, 157, 13)
    assert meter.cost_usd == 0.75
    assert meter.model_s == 1.5
    assert meter.claimed == "done"
    assert (planner.name, planner.model) == ("scripted", "m")
