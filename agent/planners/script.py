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

Every step is turned into a typed action when the file is loaded; a
malformed step is reported with the file, line and field.  At run time the
planner proposes one step per turn and finishes when the steps run out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.actions import Action, ActionError, parse_action
from agent.errors import ScriptError
from agent.keys import UnknownKeyError, parse_combo
from agent.planners.base import ActionOutcome, Observation, ProposedAction, Turn


@dataclass(frozen=True, slots=True)
class ScriptStep:
    action: Action
    note: str
    line: int


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


def load_script(path: Path) -> Script:
    """Load and validate a script file, raising :class:`ScriptError` on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read script: {exc.strerror}") from None
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
    kinds = [k for k in data if k in _SHORTHANDS]
    if len(kinds) != 1 or len(data) != 1:
        known = ", ".join(sorted(_SHORTHANDS))
        raise ScriptError(f"{where}: expected exactly one of: {known}; got {sorted(data)}")
    kind = kinds[0]
    try:
        action = parse_action(_SHORTHANDS[kind](data[kind]))
    except (ValueError, ActionError) as exc:
        raise ScriptError(f"{where}.{kind}: {exc}") from None
    return ScriptStep(action=action, note=note, line=line)


class ScriptPlanner:
    """Proposes the script's steps one per turn, whatever the outcome of the last one."""

    name = "script"

    def __init__(self, script: Script) -> None:
        self.script = script
        self.model = script.path.name
        self._next = 0

    def next_turn(self, observation: Observation, outcomes: list[ActionOutcome]) -> Turn:
        if self._next >= len(self.script.steps):
            return Turn(finished="done", message="script finished")
        step = self.script.steps[self._next]
        self._next += 1
        return Turn(actions=[ProposedAction(action=step.action, raw={"line": step.line})],
                    message=step.note)
