"""What a model is told about the actions it proposed last turn.

Every planner answers each of its model's tool calls, in the model's own
terms: ran, denied (and why), invalid, failed, or not run.  Denials and
errors read as instructions the model can act on, never as silence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.planners.base import ActionOutcome, ProposedAction


@dataclass(frozen=True, slots=True)
class Feedback:
    """The result of one tool call, ready to phrase in a wire format."""

    call_id: str
    proposal: ProposedAction
    outcome: ActionOutcome | None
    text: str
    is_error: bool

    @property
    def done(self) -> bool:
        return self.outcome is not None and self.outcome.status == "done"


NOT_RUN = "not run: an earlier action in the same turn did not complete, so this one was skipped"


def match_outcomes(proposals: Sequence[ProposedAction],
                   outcomes: Sequence[ActionOutcome]) -> list[ActionOutcome | None]:
    """Pair each proposal with its outcome.

    The loop answers proposals in order, one outcome each.  When there are
    fewer outcomes (the loop stopped early), outcomes that all carry distinct
    ``call_id`` values are matched by id; otherwise they answer the first
    proposals in order.  Proposals left without an outcome count as not run.
    """
    if len(outcomes) == len(proposals):
        return list(outcomes)
    ids = [p.call_id for p in proposals]
    if outcomes and all(o.call_id is not None and ids.count(o.call_id) == 1 for o in outcomes):
        by_id = {o.call_id: o for o in outcomes}
        return [by_id.get(call_id) for call_id in ids]
    answered: list[ActionOutcome | None] = list(outcomes[:len(proposals)])
    return answered + [None] * (len(proposals) - len(answered))


def describe_outcome(proposal: ProposedAction, outcome: ActionOutcome | None) -> tuple[str, bool]:
    """``(text, is_error)`` for one tool call."""
    if outcome is None:
        if proposal.action is None:
            return f"invalid, nothing was run: {proposal.error}", True
        return NOT_RUN, True
    message = outcome.message.strip()
    if outcome.status == "done":
        return (f"done: {message}" if message else "done"), False
    if outcome.status == "denied":
        return (f"{message or 'denied'}. The action was not run. Do not repeat it; "
                "find another way that the policy allows, or stop and explain."), True
    if outcome.status == "invalid":
        return f"invalid, nothing was run: {message or proposal.error}", True
    return f"failed while running: {message or 'unknown error'}", True


def feedback_for(proposals: Sequence[ProposedAction],
                 outcomes: Sequence[ActionOutcome]) -> list[Feedback]:
    """One :class:`Feedback` per proposal (each must carry a ``call_id``)."""
    result = []
    for proposal, outcome in zip(proposals, match_outcomes(proposals, outcomes), strict=True):
        text, is_error = describe_outcome(proposal, outcome)
        result.append(Feedback(proposal.call_id or "", proposal, outcome, text, is_error))
    return result


def cursor_in(feedback: Feedback, fallback: tuple[int, int]) -> tuple[int, int]:
    """The pointer position a ``cursor_position`` action reported (sandbox pixels)."""
    output = feedback.outcome.output if feedback.outcome is not None else {}
    x, y = output.get("x"), output.get("y")
    if isinstance(x, int) and isinstance(y, int):
        return x, y
    return fallback
