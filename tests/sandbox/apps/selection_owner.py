"""A clipboard for tests: owns an X selection and hands out its text, like an app after copy.

    python selection_owner.py SELECTION TEXT

SELECTION is ``CLIPBOARD`` or ``PRIMARY``.  Answers UTF8_STRING, STRING and
TARGETS requests until killed.
"""

from __future__ import annotations

import sys
from typing import Any

from Xlib import X, Xatom, display
from Xlib.protocol import event as xevent


def answer(conn: Any, request: Any, text: bytes, targets: list[int]) -> None:
    prop = request.property or request.target
    utf8, targets_atom = conn.intern_atom("UTF8_STRING"), conn.intern_atom("TARGETS")
    if request.target in (utf8, Xatom.STRING):
        request.requestor.change_property(prop, request.target, 8, text)
    elif request.target == targets_atom:
        request.requestor.change_property(prop, Xatom.ATOM, 32, targets)
    else:
        prop = X.NONE
    notify = xevent.SelectionNotify(time=request.time, requestor=request.requestor,
                                    selection=request.selection, target=request.target,
                                    property=prop)
    request.requestor.send_event(notify)
    conn.flush()


def main() -> None:
    name, text = sys.argv[1], sys.argv[2].encode()
    conn = display.Display()
    window = conn.screen().root.create_window(0, 0, 1, 1, 0, X.CopyFromParent)
    selection = conn.intern_atom(name)
    window.set_selection_owner(selection, X.CurrentTime)
    conn.flush()
    targets = [conn.intern_atom("UTF8_STRING"), Xatom.STRING, conn.intern_atom("TARGETS")]
    while True:
        event = conn.next_event()
        if event.type == X.SelectionRequest:
            answer(conn, event, text, targets)
        elif event.type == X.SelectionClear:
            return


if __name__ == "__main__":
    main()
