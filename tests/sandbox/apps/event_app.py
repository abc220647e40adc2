"""An xev for tests: a window that writes every input event it gets as a JSON line.

    python event_app.py LOG X Y WIDTH HEIGHT

The window is override-redirect (placed exactly, no window manager involved)
and takes the keyboard focus.  After each batch of events it repaints a strip
in a new colour, so the executor's settle sees that the events were handled.
"""

from __future__ import annotations

import json
import sys
from typing import IO, Any

from Xlib import X, display

EVENT_MASK = (X.KeyPressMask | X.KeyReleaseMask | X.ButtonPressMask | X.ButtonReleaseMask
              | X.PointerMotionMask | X.ExposureMask)
NAMES = {X.KeyPress: "key_press", X.KeyRelease: "key_release", X.ButtonPress: "button_press",
         X.ButtonRelease: "button_release", X.MotionNotify: "motion"}


def describe(conn: Any, event: Any) -> dict[str, Any]:
    record = {"type": NAMES[event.type], "state": int(event.state), "time": int(event.time),
              "x": int(event.root_x), "y": int(event.root_y)}
    if event.type in (X.KeyPress, X.KeyRelease):
        shifted = int(conn.keycode_to_keysym(event.detail, 1)) if event.state & X.ShiftMask else 0
        record["keysym"] = shifted or int(conn.keycode_to_keysym(event.detail, 0))
    elif event.type != X.MotionNotify:
        record["button"] = int(event.detail)
    return record


def main() -> None:
    log_path, x, y, width, height = sys.argv[1], *map(int, sys.argv[2:6])
    conn = display.Display()
    screen = conn.screen()
    window = screen.root.create_window(
        x, y, width, height, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
        background_pixel=screen.white_pixel, override_redirect=True, event_mask=EVENT_MASK)
    gc = window.create_gc(foreground=0)
    window.map()
    conn.sync()
    window.set_input_focus(X.RevertToParent, X.CurrentTime)
    conn.sync()
    with open(log_path, "a", encoding="utf-8") as log:
        write(log, {"type": "ready"})
        serve(conn, window, gc, log, width)


def write(log: IO[str], record: dict[str, Any]) -> None:
    log.write(json.dumps(record) + "\n")
    log.flush()


def serve(conn: Any, window: Any, gc: Any, log: IO[str], width: int) -> None:
    handled = 0
    while True:
        event = conn.next_event()
        if event.type == X.MappingNotify:
            conn.refresh_keyboard_mapping(event)
        elif event.type in NAMES:
            write(log, describe(conn, event))
            handled += 1
        if not conn.pending_events():
            gc.change(foreground=(handled * 0x2F1B37) & 0xFFFFFF)
            window.fill_rectangle(gc, 0, 0, width, 20)
            conn.flush()


if __name__ == "__main__":
    main()
