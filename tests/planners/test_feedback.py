"""Pairing the loop's outcomes with the proposals they answer, and how they read."""

from __future__ import annotations

from typing import Literal

from agent.planners.base import ActionOutcome, ProposedAction
from agent.planners.feedback import NOT_RUN, describe_outcome, feedback_for, match_outcomes
from sandbox.actions import TypeText

A, B, C = (ProposedAction(TypeText(text=t), call_id=f"id_{t}") for t in "abc")


Status = Literal["done", "denied", "invalid", "error"]


def outcome(status: Status = "done", call_id: str | None = None,
            message: str = "") -> ActionOutcome:
    return ActionOutcome(action=None, status=status, call_id=call_id, message=message)


def test_one_outcome_per_proposal_pairs_in_order() -> None:
    first, second = outcome(), outcome("denied")
    assert match_outcomes([A, B], [first, second]) == [first, second]


def test_fewer_outcomes_with_ids_are_matched_by_id() -> None:
    late = outcome(call_id="id_c")
    assert match_outcomes([A, B, C], [late]) == [None, None, late]


def test_fewer_outcomes_without_ids_answer_the_first_proposals() -> None:
    first = outcome()
    assert match_outcomes([A, B, C], [first]) == [first, None, None]


def test_batched_proposals_sharing_an_id_pair_in_order() -> None:
    one, two = (ProposedAction(TypeText(text=t), call_id="batch") for t in "xy")
    only = outcome(call_id="batch")
    assert match_outcomes([one, two], [only]) == [only, None]


def test_outcomes_read_as_instructions() -> None:
    denied = describe_outcome(A, outcome("denied", message="denied by policy: no"))
    invalid = ProposedAction(None, error="click: missing 'x'", call_id="c")
    assert describe_outcome(A, outcome()) == ("done", False)
    assert denied[1] is True
    assert "Do not repeat it" in denied[0]
    assert describe_outcome(invalid, None) == ("invalid, nothing was run: click: missing 'x'",
                                               True)
    assert describe_outcome(A, None) == (NOT_RUN, True)
    assert describe_outcome(A, outcome("error", message="X died"))[0] == \
        "failed while running: X died"
    assert [f.call_id for f in feedback_for([A, B], [])] == ["id_a", "id_b"]
