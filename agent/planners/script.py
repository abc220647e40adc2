"""A planner that replays deterministic steps from a YAML file.

The file::

    task: Write a note from a terminal
    steps:
      - key: ctrl+alt+t            # an xdotool-style combination
        note: open a terminal     # optional, shown in logs
      - wait: 1                    # seconds
      - type: "echo hi\\n"         # exact text, Unicode included
      - click: [640, 400]          # or {x: 640, y: 400, button: right, count: 2}
      - double_click: [640, 400]
      - move: [10, 10]
      - drag: [[10, 10], [200, 200]]
      - scroll: {x: 640, y: 400, dy: 3}
      - screenshot
      - action: {type: zoom, x0: 0, y0: 0, x1: 200, y1: 100}   # any canonical action
      - click_text: OK             # grounded: find the text on screen, click its centre
      - click_text: {text: Save, button: right, count: 2, timeout: 5}
      - wait_for_text: {text: Saved, timeout: 10}
      - click: {role: push button, name: Save}          # an element, by role and name
      - click: {role: menu item, name_re: "^Save( As)?", timeout: 5}
      - assert_element: {role: check box, name: Wrap lines, state: checked}
      - wait_for_element: {role: label, name: Saved, timeout: 10}

Element steps need an :class:`ElementLocator` (the accessibility tree, a VLM
or OCR's phrases, see :mod:`agent.perception.elements`); a step that finds
nothing fails naming the nearest candidates.  ``state`` may be negated
(``state: not checked``); ``assert_element`` looks once, the others poll.

Grounded steps need a :class:`TextLocator` (the screen parser); while the
text is not on screen the planner proposes short waits, and fails the run
with a clear message when the timeout passes.

Every step is turned into a typed action when the file is loaded; a
malformed step is reported with the file, line and field.  At run time the
planner proposes one step per turn and finishes when the steps run out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import yaml

from agent.errors import ScriptError
from agent.perception.elements import Element, ElementNotFound, ElementQuery, nearest
from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn
from sandbox.actions import Action, ActionError, Click, MouseButton, Wait, parse_action
from sandbox.base import Frame
from sandbox.keys import UnknownKeyError, parse_combo


class TextLocator(Protocol):
    """Finds text on a frame; returns the centre of its box, or None."""

    def locate(self, frame: Frame, text: str) -> tuple[int, int] | None: ...


@runtime_checkable
class ElementLocator(Protocol):
    """The elements shown on a frame (role, name, states, box)."""

    def elements(self, frame: Frame) -> list[Element]: ...


GroundedKind = Literal["click_text", "wait_for_text", "click_element", "assert_element",
                       "wait_for_element"]


@dataclass(frozen=True, slots=True)
class GroundedStep:
    """A step that needs the screen read first: click some text or element, or wait for it."""

    kind: GroundedKind
    text: str
    timeout_s: float = 10.0
    button: MouseButton = "left"
    count: int = 1
    query: ElementQuery | None = None
    """Set for element steps (``text`` then describes the query)."""


@dataclass(frozen=True, slots=True)
class ScriptStep:
    action: Action | None
    note: str
    line: int
    grounded: GroundedStep | None = None


@dataclass(frozen=True, slots=True)
class Script:
    task: str
    steps: tuple[ScriptStep, ...]
    path: Path


def _point(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list | tuple) and len(value) == 2:
        return {"x": value[0], "y": value[1]}
    raise ValueError("expected [x, y] or a mapping with x and y")


def _key(value: Any) -> dict[str, Any]:
    if not isinstance(value, str):
        raise ValueError("expected a key combination such as ctrl+s")
    try:
        return {"type": "key", "keys": parse_combo(value)}
    except UnknownKeyError as exc:
        raise ValueError(str(exc)) from None


def _clicks(count: int) -> Callable[[Any], dict[str, Any]]:
    return lambda value: {"type": "click", "count": count, **_point(value)}


def _drag(value: Any) -> dict[str, Any]:
    if not isinstance(value, list):
        raise ValueError("expected a list of [x, y] points")
    return {"type": "drag", "path": [_point(p) for p in value]}


def _mapping(kind: str) -> Callable[[Any], dict[str, Any]]:
    def build(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping of {kind} fields")
        return {"type": kind, **value}
    return build


_SHORTHANDS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "key": _key,
    "type": lambda value: {"type": "type", "text": value},
    "wait": lambda value: {"type": "wait", "seconds": value},
    "click": _clicks(1),
    "double_click": _clicks(2),
    "triple_click": _clicks(3),
    "right_click": lambda value: {"type": "click", "button": "right", **_point(value)},
    "move": lambda value: {"type": "mouse_move", **_point(value)},
    "drag": _drag,
    "scroll": _mapping("scroll"),
    "zoom": _mapping("zoom"),
    "screenshot": lambda value: {"type": "screenshot"},
    "cursor_position": lambda value: {"type": "cursor_position"},
    "action": lambda value: value,
}


SCRIPT_ACTION_KINDS = frozenset(_SHORTHANDS)


def parse_script_action(kind: str, value: Any) -> Action:
    """The action of one shorthand step (``key: ctrl+s``); ValueError or ActionError if malformed.

    Suite files (``agent.suites``) write the same steps as scripts.
    """
    return parse_action(_SHORTHANDS[kind](value))


_GROUNDED_FIELDS = {"text", "timeout", "button", "count"}


def _grounded(kind: str, value: Any) -> GroundedStep:
    data = {"text": value} if isinstance(value, str) else value
    if not isinstance(data, dict) or not isinstance(data.get("text"), str) or not data["text"]:
        raise ValueError("expected the text to find, or a mapping with 'text'")
    unknown = set(data) - _GROUNDED_FIELDS
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    button = data.get("button", "left")
    if button not in {"left", "right", "middle"}:
        raise ValueError(f"button must be left, right or middle, not {button!r}")
    timeout, count = float(data.get("timeout", 10.0)), int(data.get("count", 1))
    if not (0 < timeout <= 600 and 1 <= count <= 3):
        raise ValueError("timeout must be in (0, 600] seconds and count in 1..3")
    return GroundedStep(kind="click_text" if kind == "click_text" else "wait_for_text",
                        text=data["text"], timeout_s=timeout, button=button, count=count)


_ELEMENT_FIELDS = {"role", "name", "name_re", "state", "timeout", "button", "count"}
_ELEMENT_STEP_KINDS = {"click": "click_element", "assert_element": "assert_element",
                       "wait_for_element": "wait_for_element"}


def is_element_step(kind: str, value: Any) -> bool:
    """``click: {role: ..., name: ...}`` and the ``*_element`` steps."""
    if kind in {"assert_element", "wait_for_element"}:
        return True
    return kind == "click" and isinstance(value, dict) and bool(
        {"role", "name", "name_re"} & set(value))


def element_step(kind: str, value: Any) -> GroundedStep:
    """The grounded step of an element step; ValueError naming the field when malformed."""
    if not isinstance(value, dict) or not {"role", "name", "name_re"} & set(value):
        raise ValueError("expected a mapping with role, name or name_re")
    unknown = set(value) - _ELEMENT_FIELDS
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    for field in ("role", "name", "name_re", "state"):
        if field in value and not isinstance(value[field], str):
            raise ValueError(f"{field} must be text, not {value[field]!r}")
    query = ElementQuery(role=value.get("role"), name=value.get("name"),
                         name_re=value.get("name_re"), state=value.get("state"))
    base = _grounded("click_text", {"text": query.describe(), **{
        k: v for k, v in value.items() if k in {"timeout", "button", "count"}}})
    step_kind: GroundedKind = "click_element" if kind == "click" else (
        "assert_element" if kind == "assert_element" else "wait_for_element")
    return replace(base, kind=step_kind, query=query)


def load_script(path: Path) -> Script:
    """Load and validate a script file, raising :class:`ScriptError` on any problem."""
    text = _read_text(path)
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ScriptError(f"{path}:{_yaml_problem(exc)}") from None
    if not isinstance(root, yaml.MappingNode):
        raise ScriptError(f"{path}:1: a script is a mapping with 'task' and 'steps'")
    fields = {key.value: value for key, value in root.value}
    unknown = set(fields) - {"task", "steps"}
    if unknown:
        raise ScriptError(f"{path}:1: unknown field(s): {', '.join(sorted(unknown))}")
    task = _task(path, fields.get("task"))
    steps = _steps(path, fields.get("steps"))
    return Script(task=task, steps=tuple(steps), path=path)


def _read_text(path: Path) -> str:
    """The file as UTF-8 text; ScriptError naming the file when it is anything else."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read script: {exc.strerror}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ScriptError(f"{path}: the script is UTF-16 text; save it as UTF-8")
    if b"\x00" in data:
        raise ScriptError(f"{path}: a binary file, not a YAML script")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ScriptError(f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x} at "
                          f"offset {exc.start}); save the script as UTF-8") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{mark.line + 1}: invalid YAML: {problem}" if mark else f" invalid YAML: {problem}"


def _task(path: Path, node: yaml.Node | None) -> str:
    if node is None:
        return f"run script {path.name}"
    if not isinstance(node, yaml.ScalarNode):
        raise ScriptError(f"{path}:{node.start_mark.line + 1}: task: expected text")
    return str(node.value)


def _steps(path: Path, node: yaml.Node | None) -> list[ScriptStep]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        line = node.start_mark.line + 1 if node is not None else 1
        raise ScriptError(f"{path}:{line}: steps: expected a non-empty list of steps")
    return [_step(path, index, item) for index, item in enumerate(node.value)]


def _step(path: Path, index: int, node: yaml.Node) -> ScriptStep:
    line = node.start_mark.line + 1
    where = f"{path}:{line}: steps[{index}]"
    data = yaml.safe_load(yaml.serialize(node))
    if isinstance(data, str):
        data = {data: None}
    if not isinstance(data, dict):
        raise ScriptError(f"{where}: expected a mapping such as 'type: hello'")
    note = str(data.pop("note", "") or "")
    kinds = [k for k in data if k in _SHORTHANDS or k in _GROUNDED_KINDS]
    if len(kinds) != 1 or len(data) != 1:
        known = ", ".join(sorted([*_SHORTHANDS, *_GROUNDED_KINDS]))
        raise ScriptError(f"{where}: expected exactly one of: {known}; got {sorted(data)}")
    kind = kinds[0]
    try:
        if is_element_step(kind, data[kind]):
            return ScriptStep(action=None, note=note, line=line,
                              grounded=element_step(kind, data[kind]))
        if kind in _GROUNDED_KINDS:
            return ScriptStep(action=None, note=note, line=line,
                              grounded=_grounded(kind, data[kind]))
        action = parse_action(_SHORTHANDS[kind](data[kind]))
    except (ValueError, TypeError, ActionError) as exc:
        raise ScriptError(f"{where}.{kind}: {exc}") from None
    return ScriptStep(action=action, note=note, line=line)


_GROUNDED_KINDS = frozenset({"click_text", "wait_for_text", "assert_element",
                             "wait_for_element"})


# How long to wait between looks at the screen while a grounded step searches:
# the first wait, doubled each time up to the cap, so that a long timeout
# costs a handful of recorded wait steps rather than dozens.
GROUNDING_POLL_S = 0.25
GROUNDING_POLL_MAX_S = 2.0


def script_actions(path: Path) -> list[Action]:
    """The actions of a script's steps, in order (grounded steps have none and are left out).

    Raises ``ValueError`` naming the file, line and field of a malformed step.
    """
    try:
        script = load_script(path)
    except ScriptError as exc:
        raise ValueError(str(exc)) from None
    return [step.action for step in script.steps if step.action is not None]


class ScriptPlanner:
    """Proposes the script's steps one per turn, whatever the outcome of the last one."""

    name = "script"

    def __init__(self, script: Script, *, locator: TextLocator | None = None,
                 elements: ElementLocator | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if locator is None and any(s.grounded and s.grounded.query is None
                                   for s in script.steps):
            raise ScriptError(f"{script.path}: click_text/wait_for_text steps need a screen "
                              "parser, and none is available")
        if elements is None and isinstance(locator, ElementLocator):
            elements = locator
        if elements is None and any(s.grounded and s.grounded.query for s in script.steps):
            raise ScriptError(f"{script.path}: element steps need an element source (a "
                              "screen parser or the accessibility tree), and none is available")
        self._elements = elements
        self._target: dict[str, Any] = {}
        self.script = script
        self.task = script.task
        self.model = script.path.name
        self._locator = locator
        self._clock = clock
        self._next = 0
        self._searching_since: float | None = None
        self._polls = 0
        # What satisfied wait_for_text steps found, said with the next turn (an event
        # in the log), since a wait that succeeds proposes no step of its own.
        self._found: list[str] = []

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        while self._next < len(self.script.steps):
            step = self.script.steps[self._next]
            if step.grounded is None:
                self._next += 1
                return self._said(Turn(
                    actions=[ProposedAction(action=step.action, raw={"line": step.line})],
                    message=step.note))
            turn = self._ground(step, step.grounded, observation.frame)
            if turn is not None:
                return self._said(turn)
        return self._said(Turn(finished="done", message="script finished"))

    def _said(self, turn: Turn) -> Turn:
        """``turn`` with what the satisfied waits before it found, in its message."""
        if not self._found:
            return turn
        notes = "; ".join([*self._found, *([turn.message] if turn.message else [])])
        self._found.clear()
        return replace(turn, message=notes)

    def _ground(self, step: ScriptStep, grounded: GroundedStep, frame: Frame) -> Turn | None:
        """A turn for a grounded step, or None when it is satisfied and the script moves on."""
        if self._searching_since is None:
            self._searching_since = self._clock()
        started = self._searching_since
        miss = ""
        if grounded.query is not None:
            centre, miss = self._find_element(grounded.query, frame)
            if centre is None and grounded.kind == "assert_element":
                self._polls = 0
                return Turn(finished="failed", message=f"line {step.line}: {miss}")
        else:
            assert self._locator is not None
            centre = self._locator.locate(frame, grounded.text)
        if centre is not None:
            self._next += 1
            self._searching_since = None
            self._polls = 0
            if grounded.kind in {"wait_for_text", "wait_for_element", "assert_element"}:
                self._found.append(f"line {step.line}: found {grounded.text!r} on screen after "
                                   f"{self._clock() - started:.1f} s")
                return None
            click = Click(x=centre[0], y=centre[1], button=grounded.button, count=grounded.count)
            raw: dict[str, Any] = {"line": step.line, "click_text": grounded.text}
            if grounded.query is not None:
                raw = {"line": step.line, "click_element": self._target}
            return Turn(actions=[ProposedAction(action=click, raw=raw)],
                        message=step.note or f"click {grounded.text!r}")
        if self._clock() - started >= grounded.timeout_s:
            self._polls = 0
            if miss:
                return Turn(finished="failed", message=f"line {step.line}: {miss} (after "
                            f"{grounded.timeout_s:g} s)")
            return Turn(finished="failed", message=f"line {step.line}: text {grounded.text!r} "
                        f"not on screen after {grounded.timeout_s:g} s")
        remaining = grounded.timeout_s - (self._clock() - started)
        wait = min(GROUNDING_POLL_S * 2 ** self._polls, GROUNDING_POLL_MAX_S, remaining)
        self._polls += 1
        return Turn(actions=[ProposedAction(action=Wait(seconds=round(max(wait, 0.05), 2)))],
                    message=f"looking for {grounded.text!r}")

    def _find_element(self, query: ElementQuery,
                      frame: Frame) -> tuple[tuple[int, int] | None, str]:
        """The matching element's centre, or None and why (naming the nearest candidates)."""
        assert self._elements is not None
        shown = self._elements.elements(frame)
        for element in shown:
            if query.matches(element):
                self._target = {"role": element.role, "name": element.name,
                                "box": list(element.box), "source": element.source}
                return element.center, ""
        return None, str(ElementNotFound(query, nearest(shown, query)))
