"""Translate model providers' computer-use dialects into deskhand actions, and back.

Three dialects are spoken here:

* **anthropic** — the ``computer`` tool's input, ``{"action": "left_click",
  "coordinate": [x, y], "text": "ctrl"}``, in tool versions
  ``computer_20241022``, ``computer_20250124`` and ``computer_20251124``;
* **openai** — ``computer_use_preview`` actions, ``{"type": "click",
  "button": "left", "x": 10, "y": 20}``;
* **chat** — deskhand's own small function set for OpenAI-compatible chat
  models (``click(x, y)``, ``type_text(text)``, ...), see :data:`CHAT_TOOLS`.

Models see a scaled screenshot, so their coordinates pass through a
:class:`CoordinateScaler`.  The ``*_from_*`` functions raise
:class:`~sandbox.actions.ActionError` with a message meant for the model; the
``propose_*`` functions never raise: malformed output becomes
``ProposedAction(action=None, error=...)``.  The ``*_to_*`` functions render an
action in a dialect (for display, fixtures and round trips) and raise
:class:`WireError` when the dialect has no equivalent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agent.planners.base import ProposedAction
from sandbox.actions import (
    MAX_SCROLL_NOTCHES,
    Action,
    ActionError,
    Click,
    CursorPosition,
    Drag,
    HoldKey,
    Key,
    MouseDown,
    MouseMove,
    MouseUp,
    Point,
    Screenshot,
    Scroll,
    TypeText,
    Wait,
    Zoom,
    explain_invalid,
)
from sandbox.base import Size
from sandbox.keys import UnknownKeyError, normalize_key, parse_combo

Json = dict[str, Any]


class WireError(ActionError):
    """Model output that does not translate into an action; the message is for the model."""


# -- coordinates --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoordinateScaler:
    """Maps points between the model's screenshot space and sandbox pixels.

    A model pixel maps to the sandbox pixel under its centre, and back, so a
    model point survives the round trip exactly and a sandbox point moves by
    at most half a model pixel.  Model points up to ``slack`` pixels past an
    edge are clamped onto the screen (models round at the border); farther
    ones are rejected.
    """

    sandbox: Size
    model: Size
    slack: int = 2

    def to_sandbox(self, x: float, y: float) -> tuple[int, int]:
        """A model point in sandbox pixels; raises :class:`WireError` when off-screen."""
        mx, my = round(x), round(y)
        if not (self._inside(mx, self.model.width) and self._inside(my, self.model.height)):
            raise WireError(f"point ({x:g}, {y:g}) is outside the {self.model} screen")
        mx, my = _clamp(mx, self.model.width), _clamp(my, self.model.height)
        return (_centre(mx, self.model.width, self.sandbox.width),
                _centre(my, self.model.height, self.sandbox.height))

    def to_model(self, x: int, y: int) -> tuple[int, int]:
        """A sandbox point (clamped onto the screen) in model pixels."""
        sx, sy = _clamp(x, self.sandbox.width), _clamp(y, self.sandbox.height)
        return (_centre(sx, self.sandbox.width, self.model.width),
                _centre(sy, self.sandbox.height, self.model.height))

    def region_to_sandbox(self, box: Sequence[float]) -> tuple[int, int, int, int]:
        """A model region ``(x0, y0, x1, y1)`` as the sandbox region that covers it."""
        x0, y0, x1, y1 = (round(v) for v in box)
        if min(x0, y0) < -self.slack or x1 > self.model.width + self.slack \
                or y1 > self.model.height + self.slack:
            raise WireError(f"region {list(box)} is outside the {self.model} screen")
        return (_floor_edge(x0, self.model.width, self.sandbox.width),
                _floor_edge(y0, self.model.height, self.sandbox.height),
                _ceil_edge(x1, self.model.width, self.sandbox.width),
                _ceil_edge(y1, self.model.height, self.sandbox.height))

    def region_to_model(self, box: Sequence[int]) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = box
        return (_floor_edge(x0, self.sandbox.width, self.model.width),
                _floor_edge(y0, self.sandbox.height, self.model.height),
                _ceil_edge(x1, self.sandbox.width, self.model.width),
                _ceil_edge(y1, self.sandbox.height, self.model.height))

    def _inside(self, value: int, size: int) -> bool:
        return -self.slack <= value < size + self.slack


def _clamp(value: int, size: int) -> int:
    return min(max(value, 0), size - 1)


def _centre(index: int, source: int, target: int) -> int:
    # Integer form of floor((index + 0.5) * target / source): exact, never off the screen.
    return ((2 * index + 1) * target) // (2 * source)


def _floor_edge(edge: int, source: int, target: int) -> int:
    return min(max((edge * target) // source, 0), target)


def _ceil_edge(edge: int, source: int, target: int) -> int:
    return min(max(-((-edge * target) // source), 0), target)


# -- reading model output -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Reader:
    """Reads one tool call's arguments; every failure names the argument."""

    name: str
    data: Mapping[str, object]
    scaler: CoordinateScaler
    cursor: tuple[int, int]

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def get(self, key: str) -> object:
        if not self.has(key):
            raise WireError(f"{self.name}: missing {key!r}")
        return self.data[key]

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str):
            raise WireError(f"{self.name}: {key!r} must be a string, not {value!r}")
        return value

    def number(self, key: str, default: float | None = None) -> float:
        if default is not None and not self.has(key):
            return default
        return _number(self.get(key), f"{self.name}: {key!r}")

    def pair(self, key: str) -> tuple[float, float]:
        value = self.get(key)
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise WireError(f"{self.name}: {key!r} must be [x, y], not {value!r}")
        return (_number(value[0], f"{self.name}: {key}[0]"),
                _number(value[1], f"{self.name}: {key}[1]"))

    def point(self, key: str) -> tuple[int, int]:
        """A ``[x, y]`` argument in sandbox pixels."""
        return self.scaler.to_sandbox(*self.pair(key))

    def xy(self, x_key: str = "x", y_key: str = "y") -> tuple[int, int]:
        """Separate ``x`` and ``y`` arguments in sandbox pixels."""
        return self.scaler.to_sandbox(self.number(x_key), self.number(y_key))

    def combo(self, key: str) -> list[str]:
        return [] if not self.has(key) else parse_combo(self.text(key))

    def key_list(self, key: str) -> list[str]:
        """Keys given as ``["ctrl", "c"]``, ``["ctrl+c"]`` or ``"ctrl+c"``."""
        value = self.data.get(key) or []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise WireError(f"{self.name}: {key!r} must be a list of key names, not {value!r}")
        keys = [k for item in items for k in _split_keys(item)]
        return list(dict.fromkeys(keys))


def _split_keys(item: str) -> list[str]:
    if len(item) > 1 and "+" in item:
        return parse_combo(item)
    return [normalize_key(item)]


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise WireError(f"{what} must be a number, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise WireError(f"{what} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise WireError(f"{what} must be a finite number")
    return number


Builder = Callable[[_Reader], Action]


def _build(builders: Mapping[str, Builder], reader: _Reader) -> Action:
    build = builders.get(reader.name)
    if build is None:
        raise WireError(f"unknown action {reader.name!r}; known: {', '.join(sorted(builders))}")
    try:
        return build(reader)
    except (UnknownKeyError, ActionError, ValidationError) as exc:
        message = explain_invalid(exc) if isinstance(exc, ValidationError) else str(exc)
        if not message.startswith(f"{reader.name}:"):
            message = f"{reader.name}: {message}"
        raise WireError(message) from None


def _drag(start: tuple[int, int], end: tuple[int, int]) -> Drag:
    return Drag(path=[Point(x=start[0], y=start[1]), Point(x=end[0], y=end[1])])


def propose(build: Callable[[], Action], *, call_id: str | None, raw: object) -> ProposedAction:
    """Run ``build``; turn a translation failure into a ProposedAction carrying the error."""
    try:
        return ProposedAction(build(), call_id=call_id, raw=raw)
    except (ValueError, TypeError) as exc:  # ActionError and UnknownKeyError are ValueErrors
        return ProposedAction(None, error=str(exc), call_id=call_id, raw=raw)


# -- anthropic: reading ---------------------------------------------------------

_ANTHROPIC_2024 = frozenset({
    "key", "type", "mouse_move", "left_click", "left_click_drag", "right_click",
    "middle_click", "double_click", "screenshot", "cursor_position",
})
_ANTHROPIC_2025 = _ANTHROPIC_2024 | {
    "hold_key", "left_mouse_down", "left_mouse_up", "triple_click", "scroll", "wait",
}

ANTHROPIC_TOOL_ACTIONS: Mapping[str, frozenset[str]] = {
    "computer_20241022": _ANTHROPIC_2024,
    "computer_20250124": _ANTHROPIC_2025,
    "computer_20251124": _ANTHROPIC_2025 | {"zoom"},
}
"""The actions each version of Anthropic's computer tool may call."""

_SCROLL_SIGNS = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}


def _a_key(r: _Reader) -> Action:
    text = r.text("text")
    if text and not text.strip():
        return Key(keys=["space"])
    combos = [parse_combo(part) for part in text.split()]
    if not combos:
        raise WireError("key: 'text' is empty")
    if any(c != combos[0] for c in combos):
        raise WireError(f"key: give one key combination per action, not the sequence {text!r}")
    return Key(keys=combos[0], repeat=len(combos))


def _a_hold_key(r: _Reader) -> Action:
    return HoldKey(keys=parse_combo(r.text("text")), seconds=r.number("duration"))


def _a_type(r: _Reader) -> Action:
    return TypeText(text=r.text("text"))


def _a_mouse_move(r: _Reader) -> Action:
    x, y = r.point("coordinate")
    return MouseMove(x=x, y=y)


def _a_click(button: str, count: int) -> Builder:
    def build(r: _Reader) -> Action:
        x, y = r.point("coordinate") if r.has("coordinate") else (None, None)
        return Click(x=x, y=y, button=button, count=count,
                     modifiers=r.combo("text"))
    return build


def _a_drag(r: _Reader) -> Action:
    if r.has("text"):
        raise WireError("left_click_drag: holding keys during a drag is not supported")
    start = r.point("start_coordinate") if r.has("start_coordinate") else r.cursor
    end = r.point("coordinate")
    return _drag(start, end)


def _a_mouse_button(kind: type[MouseDown | MouseUp]) -> Builder:
    def build(r: _Reader) -> Action:
        if r.has("coordinate"):
            raise WireError(f"{r.name}: takes no coordinate; move the mouse first")
        return kind(button="left")
    return build


def _a_scroll(r: _Reader) -> Action:
    direction = r.text("scroll_direction")
    if direction not in _SCROLL_SIGNS:
        raise WireError(f"scroll: scroll_direction must be up, down, left or right, "
                        f"not {direction!r}")
    amount = r.number("scroll_amount", default=3)
    if amount < 0 or amount != int(amount):
        raise WireError(f"scroll: scroll_amount must be a whole number >= 0, not {amount:g}")
    sx, sy = _SCROLL_SIGNS[direction]
    x, y = r.point("coordinate") if r.has("coordinate") else r.cursor
    return Scroll(x=x, y=y, dx=sx * int(amount), dy=sy * int(amount), modifiers=r.combo("text"))


def _a_wait(r: _Reader) -> Action:
    return Wait(seconds=r.number("duration", default=1.0))


def _a_zoom(r: _Reader) -> Action:
    region = r.get("region")
    if not isinstance(region, list | tuple) or len(region) != 4:
        raise WireError(f"zoom: region must be [x0, y0, x1, y1], not {region!r}")
    box = [_number(v, "zoom: region") for v in region]
    x0, y0, x1, y1 = r.scaler.region_to_sandbox(box)
    return Zoom(x0=x0, y0=y0, x1=x1, y1=y1)


def _observe(kind: type[Screenshot | CursorPosition]) -> Builder:
    return lambda _r: kind()


_ANTHROPIC_BUILDERS: Mapping[str, Builder] = {
    "key": _a_key,
    "hold_key": _a_hold_key,
    "type": _a_type,
    "mouse_move": _a_mouse_move,
    "left_click": _a_click("left", 1),
    "right_click": _a_click("right", 1),
    "middle_click": _a_click("middle", 1),
    "double_click": _a_click("left", 2),
    "triple_click": _a_click("left", 3),
    "left_click_drag": _a_drag,
    "left_mouse_down": _a_mouse_button(MouseDown),
    "left_mouse_up": _a_mouse_button(MouseUp),
    "scroll": _a_scroll,
    "wait": _a_wait,
    "zoom": _a_zoom,
    "screenshot": _observe(Screenshot),
    "cursor_position": _observe(CursorPosition),
}

LATEST_ANTHROPIC_TOOL = "computer_20251124"


def action_from_anthropic(data: Mapping[str, object], scaler: CoordinateScaler, *,
                          cursor: tuple[int, int] = (0, 0),
                          tool_version: str = LATEST_ANTHROPIC_TOOL) -> Action:
    """Translate a ``computer`` tool input; ``cursor`` (sandbox pixels) fills omitted points."""
    name = data.get("action")
    if not isinstance(name, str):
        raise WireError(f"the computer tool needs an 'action' string, got {name!r}")
    allowed = ANTHROPIC_TOOL_ACTIONS.get(tool_version, frozenset())
    if name in _ANTHROPIC_BUILDERS and name not in allowed:
        raise WireError(f"action {name!r} is not part of {tool_version}")
    builders = {k: v for k, v in _ANTHROPIC_BUILDERS.items() if k in allowed}
    return _build(builders, _Reader(name, data, scaler, cursor))


def propose_from_anthropic(call_id: str, data: Mapping[str, object],
                           scaler: CoordinateScaler, *, cursor: tuple[int, int] = (0, 0),
                           tool_version: str = LATEST_ANTHROPIC_TOOL) -> ProposedAction:
    """Like :func:`action_from_anthropic`, but never raises."""
    return propose(lambda: action_from_anthropic(data, scaler, cursor=cursor,
                                                 tool_version=tool_version),
                   call_id=call_id, raw=dict(data))


# -- anthropic: writing ---------------------------------------------------------

_ANTHROPIC_CLICKS = {("left", 1): "left_click", ("right", 1): "right_click",
                     ("middle", 1): "middle_click", ("left", 2): "double_click",
                     ("left", 3): "triple_click"}


def _to_a_click(action: Click, scaler: CoordinateScaler) -> Json:
    name = _ANTHROPIC_CLICKS.get((action.button, action.count))
    if name is None:
        raise WireError(f"anthropic has no {action.describe()}")
    data: Json = {"action": name}
    if action.x is not None and action.y is not None:
        data["coordinate"] = list(scaler.to_model(action.x, action.y))
    if action.modifiers:
        data["text"] = "+".join(action.modifiers)
    return data


def _to_a_drag(action: Drag, scaler: CoordinateScaler) -> Json:
    if len(action.path) != 2 or action.button != "left":
        raise WireError("anthropic drags with the left button between exactly two points")
    start, end = action.path
    return {"action": "left_click_drag",
            "start_coordinate": list(scaler.to_model(start.x, start.y)),
            "coordinate": list(scaler.to_model(end.x, end.y))}


def _to_a_scroll(action: Scroll, scaler: CoordinateScaler) -> Json:
    if action.dx and action.dy:
        raise WireError("anthropic scrolls along one axis at a time")
    direction = ("right" if action.dx > 0 else "left") if action.dx else (
        "up" if action.dy < 0 else "down")
    data: Json = {"action": "scroll", "coordinate": list(scaler.to_model(action.x, action.y)),
                  "scroll_direction": direction, "scroll_amount": abs(action.dx or action.dy)}
    if action.modifiers:
        data["text"] = "+".join(action.modifiers)
    return data


def _to_a_key(action: Key) -> Json:
    return {"action": "key", "text": " ".join([action.combo] * action.repeat)}


def action_to_anthropic(action: Action, scaler: CoordinateScaler) -> Json:
    """The ``computer`` tool input that would produce ``action``."""
    match action:
        case Click():
            return _to_a_click(action, scaler)
        case Drag():
            return _to_a_drag(action, scaler)
        case Scroll():
            return _to_a_scroll(action, scaler)
        case Key():
            return _to_a_key(action)
    return _to_a_simple(action, scaler)


def _to_a_simple(action: Action, scaler: CoordinateScaler) -> Json:
    data = action.model_dump(mode="json")
    kind = data.pop("type")
    if kind in ("mouse_down", "mouse_up"):
        if data["button"] != "left":
            raise WireError(f"anthropic has no {action.describe()}")
        return {"action": f"left_{kind}"}
    if kind == "mouse_move":
        return {"action": kind, "coordinate": list(scaler.to_model(data["x"], data["y"]))}
    if kind == "hold_key":
        return {"action": kind, "text": "+".join(data["keys"]), "duration": data["seconds"]}
    if kind == "wait":
        return {"action": kind, "duration": data["seconds"]}
    if kind == "zoom":
        box = (data["x0"], data["y0"], data["x1"], data["y1"])
        return {"action": kind, "region": list(scaler.region_to_model(box))}
    if kind == "type":
        return {"action": kind, "text": data["text"]}
    return {"action": kind}


# -- openai computer_use_preview --------------------------------------------------

PIXELS_PER_NOTCH = 100
"""Screenshot pixels per scroll-wheel notch, for dialects that scroll by pixels."""

_OPENAI_BUTTONS = {"left": "left", "right": "right", "wheel": "middle",
                   "back": "back", "forward": "forward"}


def _notches(pixels: float, per_notch: int) -> int:
    if pixels == 0:
        return 0
    count = max(1, round(abs(pixels) / per_notch))
    return int(math.copysign(min(count, MAX_SCROLL_NOTCHES), pixels))


def _o_click(r: _Reader) -> Action:
    button = r.data.get("button", "left")
    if button not in _OPENAI_BUTTONS:
        raise WireError(f"click: button must be one of {', '.join(_OPENAI_BUTTONS)}, "
                        f"not {button!r}")
    x, y = r.xy()
    return Click(x=x, y=y, button=_OPENAI_BUTTONS[str(button)],
                 modifiers=r.key_list("keys"))


def _o_double_click(r: _Reader) -> Action:
    x, y = r.xy()
    return Click(x=x, y=y, count=2, modifiers=r.key_list("keys"))


def _o_drag(r: _Reader) -> Action:
    if r.key_list("keys"):
        raise WireError("drag: holding keys during a drag is not supported")
    path = r.get("path")
    if not isinstance(path, list):
        raise WireError(f"drag: path must be a list of points, not {path!r}")
    points = [r.scaler.to_sandbox(*_path_point(p)) for p in path]
    return Drag(path=[Point(x=x, y=y) for x, y in points])


def _path_point(point: object) -> tuple[float, float]:
    if isinstance(point, Mapping):
        return _number(point.get("x"), "drag: path x"), _number(point.get("y"), "drag: path y")
    if isinstance(point, list | tuple) and len(point) == 2:
        return _number(point[0], "drag: path x"), _number(point[1], "drag: path y")
    raise WireError(f"drag: each path point must be {{x, y}}, not {point!r}")


def _o_keypress(r: _Reader) -> Action:
    keys = r.key_list("keys")
    if not keys:
        raise WireError("keypress: 'keys' is empty")
    return Key(keys=keys)


def _o_move(r: _Reader) -> Action:
    x, y = r.xy()
    return MouseMove(x=x, y=y)


def _o_scroll(per_notch: int) -> Builder:
    def build(r: _Reader) -> Action:
        x, y = r.xy()
        return Scroll(x=x, y=y, dx=_notches(r.number("scroll_x", 0.0), per_notch),
                      dy=_notches(r.number("scroll_y", 0.0), per_notch),
                      modifiers=r.key_list("keys"))
    return build


def _openai_builders(per_notch: int) -> Mapping[str, Builder]:
    return {
        "click": _o_click, "double_click": _o_double_click, "drag": _o_drag,
        "keypress": _o_keypress, "move": _o_move, "scroll": _o_scroll(per_notch),
        "type": _a_type, "wait": lambda _r: Wait(seconds=1.0),
        "screenshot": _observe(Screenshot),
    }


def action_from_openai(data: Mapping[str, object], scaler: CoordinateScaler, *,
                       pixels_per_notch: int = PIXELS_PER_NOTCH) -> Action:
    """Translate one ``computer_call`` action."""
    name = data.get("type")
    if not isinstance(name, str):
        raise WireError(f"a computer action needs a 'type' string, got {name!r}")
    return _build(_openai_builders(pixels_per_notch), _Reader(name, data, scaler, (0, 0)))


def propose_from_openai(call_id: str, data: Mapping[str, object], scaler: CoordinateScaler, *,
                        pixels_per_notch: int = PIXELS_PER_NOTCH) -> ProposedAction:
    """Like :func:`action_from_openai`, but never raises."""
    return propose(lambda: action_from_openai(data, scaler, pixels_per_notch=pixels_per_notch),
                   call_id=call_id, raw=dict(data))


_OPENAI_KEY_NAMES = {"ctrl": "CTRL", "alt": "ALT", "shift": "SHIFT", "super": "META",
                     "enter": "ENTER", "escape": "ESC", "space": "SPACE", "tab": "TAB",
                     "backspace": "BACKSPACE", "delete": "DELETE", "up": "ARROWUP",
                     "down": "ARROWDOWN", "left": "ARROWLEFT", "right": "ARROWRIGHT"}


def _openai_key(key: str) -> str:
    return _OPENAI_KEY_NAMES.get(key, key.upper() if len(key) > 1 else key)


def action_to_openai(action: Action, scaler: CoordinateScaler, *,
                     pixels_per_notch: int = PIXELS_PER_NOTCH) -> Json:
    """The ``computer_call`` action that would produce ``action``."""
    data = action.model_dump(mode="json")
    if isinstance(action, Click) and action.x is not None and action.y is not None:
        return _to_o_click(action, scaler.to_model(action.x, action.y))
    if isinstance(action, Scroll):
        x, y = scaler.to_model(action.x, action.y)
        return {"type": "scroll", "x": x, "y": y, "scroll_x": action.dx * pixels_per_notch,
                "scroll_y": action.dy * pixels_per_notch, **_o_keys(action.modifiers)}
    if isinstance(action, Drag) and action.button == "left":
        return {"type": "drag", "path": [dict(zip("xy", scaler.to_model(p.x, p.y), strict=True))
                                         for p in action.path]}
    if isinstance(action, Key) and action.repeat == 1:
        return {"type": "keypress", "keys": [_openai_key(k) for k in action.keys]}
    if action.type == "mouse_move":
        return {"type": "move", **dict(zip("xy", scaler.to_model(data["x"], data["y"]),
                                           strict=True))}
    if action.type in ("type", "screenshot"):
        return data
    if action.type == "wait" and data["seconds"] == 1.0:
        return {"type": "wait"}
    raise WireError(f"openai has no equivalent of {action.describe()}")


def _to_o_click(action: Click, at: tuple[int, int]) -> Json:
    x, y = at
    keys = _o_keys(action.modifiers)
    if action.count == 2 and action.button == "left":
        return {"type": "double_click", "x": x, "y": y, **keys}
    if action.count != 1:
        raise WireError(f"openai has no {action.describe()}")
    button = {v: k for k, v in _OPENAI_BUTTONS.items()}[action.button]
    return {"type": "click", "button": button, "x": x, "y": y, **keys}


def _o_keys(modifiers: list[str]) -> Json:
    return {"keys": [_openai_key(k) for k in modifiers]} if modifiers else {}


# -- chat functions for OpenAI-compatible models ------------------------------------

FINISH_FUNCTION = "finish"


def _function(name: str, description: str, properties: Json, required: list[str]) -> Json:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required},
    }}


_X = {"type": "integer", "description": "pixels from the left edge of the screenshot"}
_Y = {"type": "integer", "description": "pixels from the top edge of the screenshot"}

CHAT_TOOLS: list[Json] = [
    _function("click", "Click at a point of the screen.", {
        "x": _X, "y": _Y,
        "button": {"type": "string", "enum": ["left", "right", "middle"]},
        "clicks": {"type": "integer", "enum": [1, 2, 3]},
        "hold_keys": {"type": "array", "items": {"type": "string"},
                      "description": "modifier keys held while clicking, e.g. [\"ctrl\"]"},
    }, ["x", "y"]),
    _function("type_text", "Type text at the keyboard focus.",
              {"text": {"type": "string"}}, ["text"]),
    _function("press_keys", "Press one key combination, e.g. [\"ctrl\", \"s\"] or [\"enter\"].",
              {"keys": {"type": "array", "items": {"type": "string"}}}, ["keys"]),
    _function("scroll", "Scroll with the mouse wheel at a point.", {
        "x": _X, "y": _Y,
        "direction": {"type": "string", "enum": ["up", "down", "left", "right"]},
        "amount": {"type": "integer", "description": "wheel notches, default 3"},
    }, ["x", "y", "direction"]),
    _function("move_mouse", "Move the mouse pointer without clicking.", {"x": _X, "y": _Y},
              ["x", "y"]),
    _function("drag", "Press the left button at one point, drag to another, release.", {
        "from_x": _X, "from_y": _Y, "to_x": _X, "to_y": _Y,
    }, ["from_x", "from_y", "to_x", "to_y"]),
    _function("wait", "Wait for the screen to change.",
              {"seconds": {"type": "number"}}, ["seconds"]),
    _function(FINISH_FUNCTION, "Stop: the task is done, or cannot be done.", {
        "status": {"type": "string", "enum": ["done", "failed"]},
        "summary": {"type": "string"},
    }, ["status", "summary"]),
]
"""The function tools offered to chat models: one small function per action."""


def _c_click(button: str | None, count: int | None) -> Builder:
    def build(r: _Reader) -> Action:
        x, y = _chat_xy(r)
        chosen_button = button or r.data.get("button") or "left"
        clicks = count or r.number("clicks", default=1)
        return Click(x=x, y=y, button=chosen_button, count=clicks,
                     modifiers=r.key_list("hold_keys") or r.key_list("keys"))
    return build


def _chat_xy(r: _Reader) -> tuple[int, int]:
    return r.point("coordinate") if r.has("coordinate") and not r.has("x") else r.xy()


def _c_scroll(r: _Reader) -> Action:
    x, y = _chat_xy(r)
    direction = r.text("direction") if r.has("direction") else "down"
    if direction not in _SCROLL_SIGNS:
        raise WireError(f"scroll: direction must be up, down, left or right, not {direction!r}")
    amount = round(r.number("amount", default=3))
    sx, sy = _SCROLL_SIGNS[direction]
    return Scroll(x=x, y=y, dx=sx * amount, dy=sy * amount)


def _c_move(r: _Reader) -> Action:
    x, y = _chat_xy(r)
    return MouseMove(x=x, y=y)


def _c_drag(r: _Reader) -> Action:
    return _drag(r.xy("from_x", "from_y"), r.xy("to_x", "to_y"))


def _c_keys(r: _Reader) -> Action:
    keys = r.key_list("keys") or r.key_list("key")
    if not keys:
        raise WireError(f"{r.name}: 'keys' is empty")
    return Key(keys=keys)


def _c_wait(r: _Reader) -> Action:
    return Wait(seconds=r.number("seconds", default=1.0))


_CHAT_BUILDERS: Mapping[str, Builder] = {
    "click": _c_click(None, None),
    "double_click": _c_click("left", 2),
    "right_click": _c_click("right", 1),
    "type_text": _a_type,
    "press_keys": _c_keys,
    "scroll": _c_scroll,
    "move_mouse": _c_move,
    "drag": _c_drag,
    "wait": _c_wait,
    "screenshot": _observe(Screenshot),
}

# Names small models reach for when they ignore the offered schema.
_CHAT_ALIASES = {
    "left_click": "click", "tap": "click", "type": "type_text", "write": "type_text",
    "key": "press_keys", "keypress": "press_keys", "hotkey": "press_keys", "press": "press_keys",
    "press_key": "press_keys", "move": "move_mouse", "mouse_move": "move_mouse",
    "left_click_drag": "drag", "sleep": "wait",
}


def chat_function_name(name: str) -> str:
    """The canonical name of a chat function, resolving common aliases."""
    lowered = name.strip().lower()
    return _CHAT_ALIASES.get(lowered, lowered)


def action_from_chat(name: str, arguments: Mapping[str, object], scaler: CoordinateScaler, *,
                     cursor: tuple[int, int] = (0, 0)) -> Action:
    """Translate one call of a :data:`CHAT_TOOLS` function (not ``finish``)."""
    return _build(_CHAT_BUILDERS, _Reader(chat_function_name(name), arguments, scaler, cursor))


def propose_from_chat(call_id: str, name: str, arguments: Mapping[str, object] | str,
                      scaler: CoordinateScaler, *,
                      cursor: tuple[int, int] = (0, 0)) -> ProposedAction:
    """Like :func:`action_from_chat`, accepting arguments as a JSON string; never raises."""
    raw = {"name": name, "arguments": arguments}
    return propose(lambda: action_from_chat(name, parse_arguments(name, arguments), scaler,
                                            cursor=cursor), call_id=call_id, raw=raw)


def parse_arguments(name: str, arguments: Mapping[str, object] | str) -> Mapping[str, object]:
    """Function arguments as a mapping; an empty string means no arguments."""
    if not isinstance(arguments, str):
        return arguments
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError as exc:
        raise WireError(f"{name}: arguments are not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise WireError(f"{name}: arguments must be a JSON object, not {arguments!r}")
    return value


def calls_in_text(text: str) -> list[tuple[str, Mapping[str, object] | str]]:
    """Function calls that a model wrote as JSON in plain text instead of using tools.

    Understands ``{"name": ..., "arguments": {...}}`` (alone, in a list, in
    ``<tool_call>`` tags or a code fence), ``{"function": {...}}`` and the flat
    ``{"action": "click", "x": 1, "y": 2}``.
    """
    decoder = json.JSONDecoder()
    found: list[tuple[str, Mapping[str, object] | str]] = []
    index = _next_json_start(text, 0)
    while index != -1:
        try:
            value, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            index = _next_json_start(text, index + 1)
            continue
        found.extend(_calls_in_value(value))
        index = _next_json_start(text, end)
    return found


def _next_json_start(text: str, start: int) -> int:
    positions = [p for p in (text.find("{", start), text.find("[", start)) if p != -1]
    return min(positions, default=-1)


def _calls_in_value(value: object) -> list[tuple[str, Mapping[str, object] | str]]:
    if isinstance(value, list):
        return [call for item in value for call in _calls_in_value(item)]
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("function"), dict):
        return _calls_in_value(value["function"])
    if isinstance(value.get("tool_calls"), list):
        return _calls_in_value(value["tool_calls"])
    if isinstance(value.get("name"), str):
        arguments = value.get("arguments", value.get("parameters", {}))
        if not isinstance(arguments, dict | str):
            arguments = json.dumps(arguments)  # parsed later into a readable error
        return [(value["name"], arguments)]
    if isinstance(value.get("action"), str):
        return [(value["action"], {k: v for k, v in value.items() if k != "action"})]
    return []
