"""The X display: one python-xlib connection for XTest input, the pointer and window titles."""

from __future__ import annotations

import sys
import time
from typing import Any

from Xlib import X, Xatom
from Xlib import display as xdisplay
from Xlib import error as xerror
from Xlib.ext import xtest


class Desktop:
    """One python-xlib connection: XTest input, pointer and active-window queries."""

    def __init__(self, display: Any) -> None:
        self.display = display
        if not display.has_extension("XTEST"):
            raise RuntimeError("the X server has no XTEST extension")
        screen = display.screen()
        self.root = screen.root
        self.width: int = screen.width_in_pixels
        self.height: int = screen.height_in_pixels
        self._active = display.intern_atom("_NET_ACTIVE_WINDOW")
        self._wm_name = display.intern_atom("_NET_WM_NAME")
        self._utf8 = display.intern_atom("UTF8_STRING")
        display.set_error_handler(_log_x_error)

    @classmethod
    def connect(cls, name: str, timeout_s: float) -> Desktop:
        """Connect to display ``name``, retrying while the server comes up."""
        give_up = time.monotonic() + timeout_s
        while True:
            try:
                return cls(xdisplay.Display(name))
            except (xerror.DisplayError, xerror.ConnectionClosedError, OSError):
                if time.monotonic() >= give_up:
                    raise
                time.sleep(0.05)

    def key(self, keycode: int, down: bool) -> None:
        xtest.fake_input(self.display, X.KeyPress if down else X.KeyRelease, keycode)

    def button(self, number: int, down: bool) -> None:
        xtest.fake_input(self.display, X.ButtonPress if down else X.ButtonRelease, number)

    def move(self, x: int, y: int) -> None:
        xtest.fake_input(self.display, X.MotionNotify, x=x, y=y)

    def flush(self) -> None:
        self.display.flush()

    def sync(self) -> None:
        """Wait until the server has processed every request sent so far."""
        self.display.sync()

    def pointer(self) -> tuple[int, int]:
        reply = self.root.query_pointer()
        return int(reply.root_x), int(reply.root_y)

    def active_window_title(self) -> str:
        try:
            window = self._active_window()
            return "" if window is None else self._title_of(window)
        except xerror.XError:  # the window closed between the two queries
            return ""

    def _active_window(self) -> Any:
        prop = self.root.get_full_property(self._active, X.AnyPropertyType)
        if prop is None or len(prop.value) == 0 or int(prop.value[0]) == 0:
            return None
        return self.display.create_resource_object("window", int(prop.value[0]))

    def _title_of(self, window: Any) -> str:
        prop = window.get_full_property(self._wm_name, self._utf8)
        if prop is not None:
            return _text(prop.value, "utf-8")
        prop = window.get_full_property(Xatom.WM_NAME, X.AnyPropertyType)
        return "" if prop is None else _text(prop.value, "latin-1")

    def drain_events(self) -> bool:
        """Consume queued events; true when the keyboard mapping changed."""
        changed = False
        while self.display.pending_events():
            event = self.display.next_event()
            changed |= event.type == X.MappingNotify
        return changed


def _text(value: Any, encoding: str) -> str:
    return value.decode(encoding, "replace") if isinstance(value, bytes) else str(value)


def _log_x_error(error: Any, request: Any = None) -> None:
    print(f"executor: X error: {error}", file=sys.stderr, flush=True)

