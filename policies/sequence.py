"""Decide a sequence of actions as the loop does: each in turn, with the line it submits.

:func:`decide_sequence` rebuilds each window's input line across the actions
(:mod:`policies.command_line`) and puts what each action submits into its
:class:`~policies.decision.PolicyContext`, exactly as the agent loop does,
so that ``deskhand policy explain`` and the tests judge a sequence the way a
run would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from policies.command_line import LineTracker, LineView, is_paste
from policies.decision import Decision, PolicyContext
from policies.engine import Policy
from sandbox.actions import Action


@dataclass(frozen=True, slots=True)
class SequenceStep:
    """One action of a sequence: what it did to the line, its context and the decision."""

    action: Action
    view: LineView
    context: PolicyContext
    decision: Decision


def line_context(base: PolicyContext, view: LineView) -> PolicyContext:
    """``base`` with what ``view`` says the action submits (the loop's hook uses the same)."""
    return replace(base, submitted_line=view.submitted_line,
                   line_unknown=view.unknown if view.submitted else (),
                   pasted_text=view.pasted, session_grants=set(base.session_grants))


def decide_sequence(policy: Policy, actions: Sequence[Action], base: PolicyContext, *,
                    stop_at_first_not_allowed: bool = False,
                    read_paste: Callable[[Action], str | None] = lambda action: None,
                    ) -> list[SequenceStep]:
    """Decide each action in turn; an action that is not allowed does not change the line."""
    tracker = LineTracker()
    steps = []
    for index, action in enumerate(actions):
        pasted = read_paste(action) if is_paste(action) else None
        view = tracker.propose(base.window_title, action, pasted)
        context = line_context(replace(base, step_index=index), view)
        decision = policy.decide(action, context)
        steps.append(SequenceStep(action, view, context, decision))
        if decision.allowed:
            tracker.commit()
        elif stop_at_first_not_allowed:
            break
    return steps
