"""The active window's accessibility tree, read over AT-SPI (the ``elements`` op).

Self-contained: imports nothing of deskhand and imports ``gi`` (PyGObject with
the ``Atspi`` 2.0 typelib) only when asked.  The walk is bounded in element
count and in time; each element is ``{role, name, states, value, box}`` with
the box in screen pixels (x0, y0, x1, y1; x1/y1 exclusive).

Needs, inside the desktop: the accessibility bus (``at-spi2-core``), the
bindings (``python3-gi``, ``gir1.2-atspi-2.0``) importable by the executor's
Python, and apps started without ``NO_AT_BRIDGE=1``.  When any is missing the
op answers ``{"available": false, "reason": ...}`` so the caller falls back to OCR.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

MAX_ELEMENTS = 500
MAX_DEPTH = 40
# States worth telling a planner or a suite (AT-SPI has about forty).
INTERESTING_STATES = ("focused", "checked", "pressed", "selected", "enabled", "sensitive",
                      "editable", "expanded", "indeterminate", "visible", "showing")


class A11yUnavailable(Exception):
    """The accessibility bus or its bindings are not there."""


def active_window_elements(*, max_elements: int = MAX_ELEMENTS,
                           time_budget_s: float = 2.0) -> dict[str, Any]:
    """``{available, app, window, elements, truncated}`` for the active window."""
    try:
        atspi = _bindings()
        window, app = _active_window(atspi)
    except A11yUnavailable as exc:
        return {"available": False, "reason": str(exc), "elements": []}
    if window is None:
        return {"available": False, "elements": [],
                "reason": "no application on the accessibility bus has an active window "
                          "(the app may not expose one, e.g. xterm)"}
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + time_budget_s
    truncated = _walk(atspi, window, found, max_elements, deadline, 0)
    return {"available": True, "app": app, "window": _text(window.get_name),
            "elements": found, "truncated": truncated}


def _bindings() -> Any:
    try:  # through importlib: PyGObject ships no type stubs
        gi = importlib.import_module("gi")
        gi.require_version("Atspi", "2.0")
        atspi = importlib.import_module("gi.repository.Atspi")
    except (ImportError, ValueError) as exc:
        raise A11yUnavailable(f"the AT-SPI bindings are missing ({exc}); install python3-gi "
                              "and gir1.2-atspi-2.0") from None
    return atspi


def _active_window(atspi: Any) -> tuple[Any, str]:
    try:
        desktop = atspi.get_desktop(0)
        count = desktop.get_child_count()
    except Exception as exc:  # GLib.Error: no bus
        raise A11yUnavailable(f"the accessibility bus does not answer ({exc})") from None
    for index in range(count):
        app = desktop.get_child_at_index(index)
        if app is None:
            continue
        for w in range(app.get_child_count()):
            window = app.get_child_at_index(w)
            if window is not None and window.get_state_set().contains(atspi.StateType.ACTIVE):
                return window, _text(app.get_name)
    return None, ""


def _walk(atspi: Any, node: Any, found: list[dict[str, Any]], limit: int, deadline: float,
          depth: int) -> bool:
    """Add ``node``'s showing descendants; True when a bound cut the walk short."""
    if len(found) >= limit or time.monotonic() > deadline or depth > MAX_DEPTH:
        return True
    try:
        count = node.get_child_count()
    except Exception:  # the widget went away mid-walk
        return False
    for index in range(count):
        child = node.get_child_at_index(index)
        if child is None:
            continue
        element = _describe(atspi, child)
        if element is None:
            continue
        if element["role"] not in {"filler", "panel", "scroll pane"} or element["name"]:
            found.append(element)
        if _walk(atspi, child, found, limit, deadline, depth + 1):
            return True
    return False


def _describe(atspi: Any, node: Any) -> dict[str, Any] | None:
    try:
        states = node.get_state_set()
        if not states.contains(atspi.StateType.SHOWING):
            return None
        extents = node.get_extents(atspi.CoordType.SCREEN)
        names = [s for s in INTERESTING_STATES
                 if states.contains(getattr(atspi.StateType, s.upper()))]
        return {"role": _text(node.get_role_name), "name": _text(node.get_name),
                "states": names, "value": _value(node),
                "box": [extents.x, extents.y, extents.x + extents.width,
                        extents.y + extents.height]}
    except Exception:  # a widget destroyed while read
        return None


def _value(node: Any) -> str:
    try:
        text = node.get_text_iface()
        if text is not None:
            return str(text.get_text(0, min(text.get_character_count(), 200)))
        value = node.get_value_iface()
        return "" if value is None else f"{value.get_current_value():g}"
    except Exception:
        return ""


def _text(getter: Any) -> str:
    try:
        return str(getter() or "")
    except Exception:
        return ""
