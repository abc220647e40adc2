"""The planner seam: something that looks at the screen and proposes actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from audit.records import Usage
from sandbox.actions import Action
from sandbox.base import Frame

if TYPE_CHECKING:
    from agent.perception.elements import Element


@dataclass(frozen=True, slots=True)
class Observation:
    """What the planner sees before a turn."""

    frame: Frame
    task: str
    step_index: int
    withheld: str = ""
    """Why the frame must not be sent to a model ("" when it may): send this note instead."""
    elements: tuple[Element, ...] = ()
    """The screen's elements, when the run gives the planner a list (``--elements``)."""


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What happened to one proposed action; fed back to the planner next turn.

    ``status`` is ``done`` when it ran, ``denied`` when the policy or a human
    refused it, ``invalid`` when validation rejected it, ``error`` when the
    sandbox failed it.  ``message`` says why, in words a model can act on.
    """

    action: Action | None
    status: Literal["done", "denied", "invalid", "error"]
    message: str = ""
    output: dict[str, object] = field(default_factory=dict)
    frame: Frame | None = None
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ProposedAction:
    """An action the planner wants, or the reason it could not be built.

    Planners translate their model's output; when that output is malformed
    ``action`` is None and ``error`` says why, so the loop can answer the
    model instead of crashing.
    """

    action: Action | None
    error: str = ""
    call_id: str | None = None
    raw: object = None
    # A planner may escalate an action to "ask" (for example a provider's
    # pending safety check) but can never approve one.
    force_ask: str = ""


@dataclass(frozen=True, slots=True)
class Turn:
    """One planner answer: actions to run, or a finish."""

    actions: list[ProposedAction] = field(default_factory=list)
    message: str = ""
    finished: Literal["done", "failed"] | None = None
    usage: Usage = field(default_factory=Usage)


class Planner(Protocol):
    """Proposes actions.  ``outcomes`` are the results of the previous turn's actions."""

    name: str
    model: str

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn: ...
