"""Validating actions: an action's JSON checked field by field and converted for execution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .keyboard import keysym_for_char, keysym_for_key
from .wire import RequestError, is_number

# Limits the executor enforces on its own; the host is stricter, this is a backstop.
MAX_TEXT_CHARS = 20_000
MAX_WAIT_S = 60.0
MAX_HOLD_S = 30.0
MAX_REPEAT = 100
MAX_NOTCHES = 100
MAX_PATH_POINTS = 1000

REQUIRED = object()
Check = Callable[[str, Any], Any]
BUTTONS = {"left": 1, "middle": 2, "right": 3, "back": 8, "forward": 9}


def _bad(name: str, why: str) -> RequestError:
    return RequestError("bad_action", f"{name}: {why}")


def integer(low: int, high: int) -> Check:
    def check(name: str, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise _bad(name, f"must be an integer in {low}..{high}")
        return value
    return check


def number(low: float, high: float) -> Check:
    def check(name: str, value: Any) -> float:
        if not is_number(value) or not low <= value <= high:
            raise _bad(name, f"must be a number in {low:g}..{high:g}")
        return float(value)
    return check


def optional(inner: Check) -> Check:
    def check(name: str, value: Any) -> Any:
        return None if value is None else inner(name, value)
    return check


def key_list(low: int, high: int) -> Check:
    def check(name: str, value: Any) -> list[int]:
        if not isinstance(value, list) or not low <= len(value) <= high:
            raise _bad(name, f"must be a list of {low}..{high} key names")
        if not all(isinstance(key, str) for key in value):
            raise _bad(name, "key names must be strings")
        return [keysym_for_key(key) for key in value]
    return check


def button(name: str, value: Any) -> int:
    if value not in BUTTONS:
        raise _bad(name, f"must be one of {', '.join(BUTTONS)}")
    return BUTTONS[value]


def text(name: str, value: Any) -> list[int]:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TEXT_CHARS:
        raise _bad(name, f"must be a string of 1..{MAX_TEXT_CHARS} characters")
    return [keysym_for_char(char) for char in value.replace("\r\n", "\n").replace("\r", "\n")]


def point_list(name: str, value: Any) -> list[tuple[int, int]]:
    if not isinstance(value, list) or not 2 <= len(value) <= MAX_PATH_POINTS:
        raise _bad(name, f"must be a list of 2..{MAX_PATH_POINTS} points")
    coordinate = integer(0, 1 << 16)
    points = []
    for point in value:
        if not isinstance(point, dict) or set(point) != {"x", "y"}:
            raise _bad(name, 'each point must be {"x": int, "y": int}')
        points.append((coordinate(name, point["x"]), coordinate(name, point["y"])))
    return points


COORD = integer(0, 1 << 16)
MOUSE_BUTTON: tuple[Check, Any] = (button, "left")
MODIFIER_LIST: tuple[Check, Any] = (key_list(0, 4), [])

ACTION_FIELDS: dict[str, dict[str, tuple[Check, Any]]] = {
    "screenshot": {},
    "cursor_position": {},
    "wait": {"seconds": (number(0, MAX_WAIT_S), 1.0)},
    "key": {"keys": (key_list(1, 6), REQUIRED), "repeat": (integer(1, MAX_REPEAT), 1)},
    "hold_key": {"keys": (key_list(1, 6), REQUIRED), "seconds": (number(0, MAX_HOLD_S), REQUIRED)},
    "type": {"text": (text, REQUIRED)},
    "mouse_move": {"x": (COORD, REQUIRED), "y": (COORD, REQUIRED)},
    "click": {"x": (optional(COORD), None), "y": (optional(COORD), None), "button": MOUSE_BUTTON,
              "count": (integer(1, 3), 1), "modifiers": MODIFIER_LIST},
    "mouse_down": {"button": MOUSE_BUTTON},
    "mouse_up": {"button": MOUSE_BUTTON},
    "drag": {"path": (point_list, REQUIRED), "button": MOUSE_BUTTON},
    "scroll": {"x": (COORD, REQUIRED), "y": (COORD, REQUIRED),
               "dx": (integer(-MAX_NOTCHES, MAX_NOTCHES), 0),
               "dy": (integer(-MAX_NOTCHES, MAX_NOTCHES), 0), "modifiers": MODIFIER_LIST},
    "zoom": {"x0": (COORD, REQUIRED), "y0": (COORD, REQUIRED),
             "x1": (COORD, REQUIRED), "y1": (COORD, REQUIRED)},
}

def validate_action(data: Any, width: int, height: int) -> dict[str, Any]:
    """Check an action's JSON field by field; returns the fields, converted for execution."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise RequestError("bad_action", "action must be an object with a string 'type'")
    kind = data["type"]
    if kind not in ACTION_FIELDS:
        raise RequestError("bad_action", f"unknown action type {kind!r}")
    fields = ACTION_FIELDS[kind]
    unknown = set(data) - set(fields) - {"type"}
    if unknown:
        raise RequestError("bad_action", f"{kind}: unknown field(s) {', '.join(sorted(unknown))}")
    action = {"type": kind}
    for name, (check, default) in fields.items():
        if name not in data and default is REQUIRED:
            raise _bad(f"{kind}.{name}", "is required")
        action[name] = check(f"{kind}.{name}", data[name]) if name in data else default
    _check_on_screen(action, width, height)
    return action


def _check_on_screen(action: dict[str, Any], width: int, height: int) -> None:
    if action["type"] == "click" and (action["x"] is None) != (action["y"] is None):
        raise _bad("click", "give both x and y, or neither")
    if action["type"] == "zoom":
        _check_zoom(action, width, height)
        return
    for x, y in _points(action):
        if x >= width or y >= height:
            raise _bad(action["type"], f"point ({x}, {y}) is outside the {width}x{height} screen")


def _points(action: dict[str, Any]) -> list[tuple[int, int]]:
    if action["type"] == "drag":
        return list(action["path"])
    if action.get("x") is not None and action.get("y") is not None:
        return [(action["x"], action["y"])]
    return []


def _check_zoom(action: dict[str, Any], width: int, height: int) -> None:
    if not (action["x0"] < action["x1"] <= width and action["y0"] < action["y1"] <= height):
        raise _bad("zoom", f"region must satisfy x0 < x1 <= {width} and y0 < y1 <= {height}")

