"""What each MCP tool call asks of the desktop, as steps of the agent loop.

A :class:`ToolRequest` is a small step driver: :meth:`~ToolRequest.start`
proposes the first action (in sandbox pixels, ready for validation and the
policy), :meth:`~ToolRequest.advance` hears what happened to it and proposes
the next one or finishes with a :class:`Reply`.  ``computer`` and
``screenshot`` take one step; ``click_text`` and ``wait_for_text`` look, wait
and look again, each look an audited step, until the text shows or their
timeout passes.

Nothing here knows MCP: a :class:`Reply` is text, structured data and an
optional image, turned into the protocol's types by :mod:`agent.mcp.server`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.mcp.screen import ScreenSpace, frame_id
from agent.perception.screen import TextElement, find_text
from agent.planners.base import ActionOutcome, ProposedAction
from agent.planners.script import GROUNDING_POLL_S
from agent.wire_actions import propose
from audit.records import ApprovalRecord
from policies.decision import Decision, TargetElement
from sandbox.actions import (
    Action,
    ActionError,
    Click,
    CursorPosition,
    MouseButton,
    Screenshot,
    Wait,
    Zoom,
    parse_action,
)
from sandbox.base import Frame

Json = dict[str, Any]
# The longest pause between two looks for text.
MAX_POLL_S = 1.0
TextReader = Callable[[Frame], Sequence[TextElement]]


@dataclass(frozen=True, slots=True)
class Reply:
    """A tool call's answer: words for the model, data for programs, maybe a screenshot."""

    text: str
    data: Json
    image_of: Frame | None = None
    error: bool = False


@dataclass(frozen=True, slots=True)
class StepTrace:
    """What the audit log was told about one step (captured by the session's log)."""

    step_id: int
    index: int
    decision: Decision | None
    approval_id: int | None = None
    target_element: TargetElement | None = None
    """What a click lands on, as the policy judged it."""


@dataclass(frozen=True, slots=True)
class Settled:
    """The fate of the step a request proposed, and the screen after it."""

    outcome: ActionOutcome | None
    frame: Frame
    trace: StepTrace | None
    approval: ApprovalRecord | None = None


class ToolRequest(Protocol):
    tool: str
    arguments: Json

    def start(self, frame: Frame) -> ProposedAction | Reply: ...

    def advance(self, settled: Settled) -> ProposedAction | Reply: ...


# -- replies for steps that did not run ------------------------------------------


def refusal(settled: Settled, space: ScreenSpace) -> Reply | None:
    """The reply for a step that did not run (denied, invalid, failed), or None when it ran."""
    outcome = settled.outcome
    if outcome is None:
        return Reply("the step did not run: the desktop session is ending",
                     {"status": "not_run"}, error=True)
    step = settled.trace.index if settled.trace else None
    if outcome.status == "denied":
        return _denial(settled, step, space)
    if outcome.status == "invalid":
        return Reply(f"{outcome.message} (nothing ran; fix the action and call again)",
                     {"status": "invalid", "step": step, "error": outcome.message}, error=True)
    if outcome.status == "error":
        return Reply(f"the desktop failed the action: {outcome.message}",
                     {"status": "error", "step": step, "error": outcome.message}, error=True)
    return None


def _denial(settled: Settled, step: int | None, space: ScreenSpace) -> Reply:
    decision = settled.trace.decision if settled.trace else None
    rules = list(decision.rule_ids) if decision else []
    reason = decision.reason if decision else ""
    data: Json = {"status": "denied", "step": step, "rule_ids": rules, "reason": reason,
                  "effect": decision.effect if decision else "deny", **_target_data(settled, space)}
    named = ", ".join(rules) or "(no rule matched)"
    on = _target_named(settled, reason)
    if decision is None or decision.effect == "deny":
        text = (f"denied by policy rule {named}{on}: {reason.rstrip('.')}. "
                "Do not repeat it; find another way.")
        return Reply(text, data, error=True)
    who = _who_refused(settled.approval)
    data["approver"] = who
    text = (f"not approved: rule {named}{on} needs a human's approval ({reason}); {who}. "
            "Do not repeat it; find another way or ask the user.")
    return Reply(text, data, error=True)


def _target_data(settled: Settled, space: ScreenSpace) -> Json:
    """The element the step's click lands on, for programs (its box in screenshot pixels)."""
    target = settled.trace.target_element if settled.trace else None
    if target is None:
        return {}
    box = list(space.box_to_screenshot(target.box)) if target.box is not None else None
    return {"target_element": {**target.as_json(), "box": box}}


def _target_named(settled: Settled, reason: str) -> str:
    """`` on push button 'Delete'`` unless the rule's reason names it already."""
    target = settled.trace.target_element if settled.trace else None
    if target is None or target.describe() in reason:
        return ""
    return f" on {target.describe()}"


def _who_refused(approval: ApprovalRecord | None) -> str:
    if approval is None or approval.answer is None:
        waited = f" within {approval.timeout_s:g} s" if approval else ""
        return f"nobody answered{waited}, so it was denied"
    return f"{approval.answer.approver} denied it"


# -- coordinates ------------------------------------------------------------------


def propose_in_screenshot_space(arguments: Mapping[str, Any],
                                space: ScreenSpace) -> ProposedAction:
    """An action whose points are in the client's screenshot space, in sandbox pixels."""
    return propose(lambda: parse_action(_to_sandbox_points(dict(arguments), space)),
                   call_id=None, raw=dict(arguments))


def _to_sandbox_points(data: Json, space: ScreenSpace) -> Json:
    scaler = space.scaler
    if data.get("type") == "zoom":
        box = [_number(data, k) for k in ("x0", "y0", "x1", "y1")]
        data["x0"], data["y0"], data["x1"], data["y1"] = scaler.region_to_sandbox(box)
        return data
    if data.get("x") is not None and data.get("y") is not None:
        data["x"], data["y"] = scaler.to_sandbox(_number(data, "x"), _number(data, "y"))
    if isinstance(data.get("path"), list):
        data["path"] = [_path_point(p, space) for p in data["path"]]
    return data


def _path_point(point: Any, space: ScreenSpace) -> Json:
    if isinstance(point, Mapping):
        x, y = _number(point, "x"), _number(point, "y")
    elif isinstance(point, list | tuple) and len(point) == 2:
        x, y = _number({"x": point[0]}, "x"), _number({"y": point[1]}, "y")
    else:
        raise ActionError("path: each point is {x, y} or [x, y]")
    sx, sy = space.scaler.to_sandbox(x, y)
    return {"x": sx, "y": sy}


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ActionError(f"{key}: expected a number of screenshot pixels, got {value!r}")
    return float(value)


# -- the requests -----------------------------------------------------------------


def _done_data(settled: Settled, space: ScreenSpace, frame: Frame) -> Json:
    return {"status": "done", "step": settled.trace.index if settled.trace else None,
            "frame_id": frame_id(frame), "screenshot_size": str(space.size),
            "screen_size": str(space.screen)}


@dataclass
class ActRequest:
    """One action of the vocabulary (``computer``, ``screenshot``)."""

    tool: str
    arguments: Json
    space: ScreenSpace
    action: Json
    with_screenshot: bool = True

    def start(self, frame: Frame) -> ProposedAction | Reply:
        return propose_in_screenshot_space(self.action, self.space)

    def advance(self, settled: Settled) -> ProposedAction | Reply:
        refused = refusal(settled, self.space)
        if refused is not None:
            return refused
        assert settled.outcome is not None
        action = settled.outcome.action
        shown = settled.outcome.frame if isinstance(action, Zoom) else settled.frame
        shown = shown or settled.frame
        data = _done_data(settled, self.space, shown)
        data.update(self._output(action, settled.outcome))
        data.update(_target_data(settled, self.space))
        text = f"done: {self._describe(action)}{_target_named(settled, '')}; " \
               f"frame {data['frame_id']}"
        if isinstance(action, CursorPosition):
            text += f"; the pointer is at ({data['x']}, {data['y']}) in screenshot pixels"
        return Reply(text, data, image_of=shown if self.with_screenshot else None)

    def _output(self, action: Action | None, outcome: ActionOutcome) -> Json:
        output = dict(outcome.output)
        if isinstance(action, CursorPosition) and {"x", "y"} <= output.keys():
            output["x"], output["y"] = self.space.to_screenshot(int(str(output["x"])),
                                                                int(str(output["y"])))
        return output

    def _describe(self, action: Action | None) -> str:
        if action is None:
            return "nothing"
        if isinstance(action, Screenshot):
            return (f"screenshot {self.space.size} (the screen is {self.space.screen}; "
                    "give coordinates in screenshot pixels)")
        return f"{action.type} (as {action.describe()} in screen pixels)"


@dataclass
class ReadScreenRequest:
    """OCR of a fresh screenshot: every piece of text with its box in screenshot pixels."""

    tool: str
    arguments: Json
    space: ScreenSpace
    read: TextReader

    def start(self, frame: Frame) -> ProposedAction | Reply:
        return ProposedAction(Screenshot())

    def advance(self, settled: Settled) -> ProposedAction | Reply:
        refused = refusal(settled, self.space)
        if refused is not None:
            return refused
        elements = [self._element(e) for e in self.read(settled.frame)]
        data = _done_data(settled, self.space, settled.frame)
        data["elements"] = elements
        lines = [f"{e['text']!r} at {e['box']}" for e in elements]
        text = (f"{len(elements)} pieces of text on frame {data['frame_id']} "
                f"(boxes [x0, y0, x1, y1] in {self.space.size} screenshot pixels):\n"
                + "\n".join(lines))
        return Reply(text, data)

    def _element(self, element: TextElement) -> Json:
        box = self.space.box_to_screenshot(element.box)
        return {"text": element.text, "box": list(box),
                "confidence": round(element.confidence, 3)}


@dataclass
class FindTextRequest:
    """Look for text until it shows or ``timeout_s`` passes; click it if asked to.

    Each look is an audited step: a fresh screenshot first, then waits that
    grow from a quarter second to one second.
    """

    tool: str
    arguments: Json
    space: ScreenSpace
    read: TextReader
    text: str
    timeout_s: float
    clock: Callable[[], float]
    click: tuple[MouseButton, int] | None = None
    _started: float = field(default=0.0, init=False)
    _clicked: bool = field(default=False, init=False)
    _looks: int = field(default=0, init=False)

    def start(self, frame: Frame) -> ProposedAction | Reply:
        self._started = self.clock()
        return ProposedAction(Screenshot())

    def advance(self, settled: Settled) -> ProposedAction | Reply:
        refused = refusal(settled, self.space)
        if refused is not None:
            return refused
        if self._clicked:
            data = _done_data(settled, self.space, settled.frame)
            return Reply(f"done: clicked {self.text!r}; frame {data['frame_id']}", data,
                         image_of=settled.frame)
        found = find_text(self.read(settled.frame), self.text)
        if found is not None:
            return self._found(found, settled)
        remaining = self.timeout_s - (self.clock() - self._started)
        if remaining <= 0:
            return Reply(f"{self.text!r} is not on screen after {self.timeout_s:g} s",
                         {"status": "not_found", "text": self.text}, error=True)
        return ProposedAction(Wait(seconds=round(min(self._next_pause(), remaining), 3)))

    def _next_pause(self) -> float:
        """Pauses double up to :data:`MAX_POLL_S`: quick to notice, few steps on long waits.

        Every look is a step that counts against the session's step and
        actions-per-minute budgets.
        """
        pause: float = min(GROUNDING_POLL_S * float(2 ** min(self._looks, 8)), MAX_POLL_S)
        self._looks += 1
        return pause

    def _found(self, found: TextElement, settled: Settled) -> ProposedAction | Reply:
        if self.click is not None:
            self._clicked = True
            button, count = self.click
            x, y = found.center
            return ProposedAction(Click(x=x, y=y, button=button, count=count))
        box = list(self.space.box_to_screenshot(found.box))
        data = _done_data(settled, self.space, settled.frame)
        data.update({"text": found.text, "box": box})
        return Reply(f"{self.text!r} is on screen at {box} (screenshot pixels); "
                     f"frame {data['frame_id']}", data)
