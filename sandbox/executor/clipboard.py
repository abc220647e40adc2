"""Read the X clipboard or primary selection, as a paste would insert it.

Self-contained like ``executor.py`` (standard library + python-xlib only), so
that a backend can copy both files into its sandbox.  It opens its own X
connection, so that the selection's reply never mixes with the executor's
input events.

X selections are not stored anywhere: the owning client sends the text
when asked (``ConvertSelection``) into a property of a window of ours.  No
owner, a refusal, a reply in increments (``INCR``, for very large
selections) or no answer in time all read as ``None``: the paste is then
unknown, which the policy judges as such.
"""

from __future__ import annotations

import select
import time
from typing import Any

from Xlib import X
from Xlib import display as xdisplay
from Xlib import error as xerror

SELECTIONS: dict[str, str] = {"clipboard": "CLIPBOARD", "primary": "PRIMARY"}
MAX_CHARS = 64 * 1024


def read_selection(display_name: str, which: str, timeout_s: float) -> str | None:
    """The text of selection ``which`` (``clipboard`` or ``primary``), or ``None``."""
    if which not in SELECTIONS:
        raise ValueError(f"unknown selection {which!r}; known: {', '.join(SELECTIONS)}")
    display = xdisplay.Display(display_name)
    try:
        return _convert(display, display.intern_atom(SELECTIONS[which]), timeout_s)
    except (xerror.XError, OSError):
        return None
    finally:
        display.close()


def _convert(display: Any, selection: int, timeout_s: float) -> str | None:
    owner = display.get_selection_owner(selection)
    if owner in (X.NONE, None) or getattr(owner, "id", owner) == X.NONE:
        return None
    window = display.screen().root.create_window(0, 0, 1, 1, 0, X.CopyFromParent)
    into = display.intern_atom("DESKHAND_SELECTION")
    for target in ("UTF8_STRING", "STRING"):
        window.convert_selection(selection, display.intern_atom(target), into, X.CurrentTime)
        display.flush()
        event = _selection_notify(display, window, timeout_s)
        if event is None:
            return None
        if event.property != X.NONE:
            return _property_text(display, window, into)
    return None


def _selection_notify(display: Any, window: Any, timeout_s: float) -> Any:
    give_up = time.monotonic() + timeout_s
    while True:
        while display.pending_events():
            event = display.next_event()
            if event.type == X.SelectionNotify and event.requestor.id == window.id:
                return event
        left = give_up - time.monotonic()
        if left <= 0:
            return None
        select.select([display.fileno()], [], [], left)


def _property_text(display: Any, window: Any, name: int) -> str | None:
    prop = window.get_full_property(name, X.AnyPropertyType)
    if prop is None or prop.property_type == display.intern_atom("INCR"):
        return None
    value = prop.value
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text[:MAX_CHARS]
