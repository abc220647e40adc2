"""The active window's accessibility tree, read over AT-SPI (the ``elements`` op).

Self-contained: imports nothing of deskhand and imports ``gi`` (PyGObject with
the ``Atspi`` 2.0 typelib) only when asked.  The walk is bounded in element
count, depth and time, and every call to an app is bounded too (an app that
hangs costs at most :data:`CALL_TIMEOUT_MS` per call, never the sandbox).

Each element is ``{role, name, states, value, box}``: the role as AT-SPI names
it (``push button``, ``check box``, ``text``, ``menu item``...), the name
stripped (a name-less widget that shows a label, such as a file manager's icon,
is called by that label), the states worth telling a planner or a suite (:data:`STATES`), the
text or number it holds (``value``, capped) and its box in screen pixels
(x0, y0, x1, y1; x1/y1 exclusive).  Only what shows is listed: hidden menus and
off-page tabs are neither listed nor walked (an icon GTK 2 left unmarked as showing is
judged by its box: :func:`_unmarked_icon`).

Needs, inside the desktop: the accessibility bus (``at-spi2-core``), the
bindings (``python3-gi``, ``gir1.2-atspi-2.0``) importable by the executor's
Python, and apps started without ``NO_AT_BRIDGE=1``.  When any is missing, or
the active window's app exposes no tree (xterm), the op answers
``{"available": false, "reason": ...}`` so the caller falls back to OCR.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from typing import Any

MAX_ELEMENTS = 500
MAX_DEPTH = 40
MAX_TEXT = 200  # characters of a name or value
CALL_TIMEOUT_MS = 400
# A walk stops at its budget; a call to a hung app can overrun it by this much.
OVERRUN_S = 2 * CALL_TIMEOUT_MS / 1000
# Told to planners and suites (AT-SPI has about forty; ``showing`` and ``visible`` hold for
# every element listed, so they say nothing).
STATES = ("active", "checked", "editable", "enabled", "expanded", "focusable", "focused",
          "indeterminate", "pressed", "selected", "sensitive")
# Where the text held is content, not a name (an entry, the calculator's display).
TEXT_ROLES = frozenset({"text", "entry", "password text", "terminal", "document text",
                        "paragraph", "spin button"})
# Containers that only group others: listed when they carry a name.
GROUPING_ROLES = frozenset({"filler", "panel", "scroll pane", "page tab list"})


class A11yUnavailable(Exception):
    """The accessibility bus or its bindings are not there."""


def active_window_elements(*, max_elements: int = MAX_ELEMENTS, time_budget_s: float = 2.0,
                           active_title: str = "") -> dict[str, Any]:
    """``{available, app, window, elements, truncated, walk_ms}`` for the active window, or
    ``{available: false, reason, elements: []}``; ``active_title`` (the X server's active
    window) names the window in the reason when its app is not on the bus."""
    started = time.monotonic()
    try:
        atspi = _bindings()
        _dispatch_pending_events()
        atspi.set_timeout(CALL_TIMEOUT_MS, CALL_TIMEOUT_MS)
        window, app = _active_window(atspi)
    except A11yUnavailable as exc:
        return unavailable(str(exc))
    if window is None:
        return unavailable(_no_window_reason(active_title))
    walk = _Walk(atspi, max_elements, started + time_budget_s)
    walk.children_of(window, 0)
    return {"available": True, "app": app, "window": _text(window.get_name),
            "elements": walk.found, "truncated": walk.truncated,
            "walk_ms": round((time.monotonic() - started) * 1000, 2)}


def unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason, "elements": []}


def _no_window_reason(active_title: str) -> str:
    if not active_title:
        return "no window is active"
    return (f"the active window {active_title!r} is not on the accessibility bus (its app "
            "exposes no tree; xterm, for one, has none)")


def _bindings() -> Any:
    try:  # through importlib: PyGObject ships no type stubs
        gi = importlib.import_module("gi")
        gi.require_version("Atspi", "2.0")
        atspi = importlib.import_module("gi.repository.Atspi")
    except (ImportError, ValueError) as exc:
        raise A11yUnavailable(f"the AT-SPI bindings are missing ({exc}); install python3-gi "
                              "and gir1.2-atspi-2.0 where the executor's Python sees them") \
            from None
    return atspi


def _dispatch_pending_events() -> None:
    """Let the bindings handle what the bus sent since the last walk (apps coming and going,
    state changes): nothing else runs their main loop, and unread signals would pile up."""
    context = importlib.import_module("gi.repository.GLib").MainContext.default()
    for _ in range(10_000):
        if not context.iteration(False):
            return


def _active_window(atspi: Any) -> tuple[Any, str]:
    try:
        desktop = atspi.get_desktop(0)
        count = desktop.get_child_count()
    except Exception as exc:  # GLib.Error: no bus
        raise A11yUnavailable(f"the accessibility bus does not answer ({exc})") from None
    for index in range(count):
        app = _child(desktop, index)
        if app is None:
            continue
        for w in range(_child_count(app)):
            window = _child(app, w)
            if window is not None and _has_state(atspi, window, "active"):
                return window, _text(app.get_name)
    return None, ""


@dataclass
class _Walk:
    """One bounded walk down a window; ``found`` in reading order (depth first)."""

    atspi: Any
    limit: int
    deadline: float
    found: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False

    def children_of(self, node: Any, depth: int, box: list[int] | None = None) -> None:
        """Visit ``node``'s children; ``box`` is ``node``'s own (None for the window)."""
        if depth > MAX_DEPTH:
            self.truncated = True
            return
        for index in range(_child_count(node)):
            if len(self.found) >= self.limit or time.monotonic() > self.deadline:
                self.truncated = True
                return
            child = _child(node, index)
            if child is not None:
                self.visit(child, depth + 1, box)

    def visit(self, node: Any, depth: int, parent_box: list[int] | None) -> None:
        element = describe(self.atspi, node, parent_box)
        if element is None:  # hidden (or gone): nothing under it shows either
            return
        if _worth_listing(element):
            self.found.append(element)
        self.children_of(node, depth, element["box"])


def _worth_listing(element: dict[str, Any]) -> bool:
    x0, y0, x1, y1 = element["box"]
    if x1 <= x0 or y1 <= y0:  # placeholders such as a notebook's page tab report -1 sizes
        return False
    return element["role"] not in GROUPING_ROLES or bool(element["name"])


def describe(atspi: Any, node: Any, parent_box: list[int] | None = None) \
        -> dict[str, Any] | None:
    """The element of a showing node (``parent_box``: its showing parent's box); None when
    it is hidden or went away mid-read."""
    try:
        states = node.get_state_set()
        showing = states.contains(atspi.StateType.SHOWING)
        role = _text(node.get_role_name)
        if not (showing or _unmarked_icon(atspi, role, states)):
            return None
        extents = node.get_extents(atspi.CoordType.SCREEN)
        box = [extents.x, extents.y, extents.x + extents.width, extents.y + extents.height]
        if not (showing or _within(box, parent_box)):
            return None  # an icon scrolled out of its view
        name, value = _text(node.get_name).strip(), _value(atspi, node)
        shown = [s for s in STATES if _contains(atspi, states, s)]
        if not name and role not in TEXT_ROLES and "editable" not in shown:
            name = value.strip()  # a file manager's icon is called by the label it shows
        return {"role": role, "name": name, "states": shown,
                "value": "" if value.strip() == name else value,  # a label's text: its name
                "box": box}
    except Exception:  # a widget destroyed while read
        return None


def _unmarked_icon(atspi: Any, role: str, states: Any) -> bool:
    """An icon that may show without saying so.  GTK 2's icon view (pcmanfm's) sets an
    item's ``showing`` when the item's accessible is made and again only on a scroll; one
    made before the view laid the item out (the bridge makes them as a folder loads) stays
    unshown for good.  Such an icon is ``visible``; it shows when it lies inside its view."""
    return role == "icon" and bool(states.contains(atspi.StateType.VISIBLE))


def _within(box: list[int], outer: list[int] | None) -> bool:
    x0, y0, x1, y1 = box
    return (outer is not None and x0 < x1 and y0 < y1 and outer[0] <= x0 and outer[1] <= y0
            and x1 <= outer[2] and y1 <= outer[3])


def _value(atspi: Any, node: Any) -> str:
    """The text an element holds (an entry, the calculator's display) or its number."""
    try:
        interfaces = set(node.get_interfaces())
        if "Text" in interfaces:
            count = atspi.Text.get_character_count(node)
            return str(atspi.Text.get_text(node, 0, min(count, MAX_TEXT)))
        if "Value" in interfaces:
            return f"{atspi.Value.get_current_value(node):g}"
    except Exception:
        pass
    return ""


def _has_state(atspi: Any, node: Any, state: str) -> bool:
    try:
        return _contains(atspi, node.get_state_set(), state)
    except Exception:
        return False


def _contains(atspi: Any, states: Any, state: str) -> bool:
    kind = getattr(atspi.StateType, state.upper(), None)
    return kind is not None and bool(states.contains(kind))


def _child_count(node: Any) -> int:
    try:
        return int(node.get_child_count())
    except Exception:  # the widget went away mid-walk
        return 0


def _child(node: Any, index: int) -> Any:
    try:
        return node.get_child_at_index(index)
    except Exception:
        return None


def _text(getter: Any) -> str:
    try:
        return str(getter() or "")[:MAX_TEXT]
    except Exception:
        return ""
