"""Keyboard mapping: deskhand key names and characters to X keysyms, keysyms to keycodes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from Xlib import XK, X

from .wire import Deadline, RequestError
from .xinput import Desktop

SPARE_REUSE_S = 0.100  # a borrowed keycode is re-mapped only this long after its last press

MODIFIER_KEYSYMS = {"ctrl": "Control_L", "alt": "Alt_L", "shift": "Shift_L", "super": "Super_L"}

NAMED_KEYSYMS: dict[str, str] = {
    "enter": "Return", "escape": "Escape", "tab": "Tab", "backspace": "BackSpace",
    "delete": "Delete", "insert": "Insert", "space": "space", "home": "Home", "end": "End",
    "pageup": "Prior", "pagedown": "Next", "up": "Up", "down": "Down", "left": "Left",
    "right": "Right", "menu": "Menu", "printscreen": "Print", "pause": "Pause",
    "capslock": "Caps_Lock", "numlock": "Num_Lock", "scrolllock": "Scroll_Lock",
    "kp_enter": "KP_Enter", "kp_add": "KP_Add", "kp_subtract": "KP_Subtract",
    "kp_multiply": "KP_Multiply", "kp_divide": "KP_Divide", "kp_decimal": "KP_Decimal",
    **{f"kp_{d}": f"KP_{d}" for d in range(10)},
    **{f"f{n}": f"F{n}" for n in range(1, 25)},
}

# Not in python-xlib's default keysym tables; values from X11/XF86keysym.h.
MEDIA_KEYSYMS = {"volumedown": 0x1008FF11, "volumemute": 0x1008FF12, "volumeup": 0x1008FF13}

PRINTABLE_KEYS = frozenset(
    "abcdefghijklmnopqrstuvwxyz0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)


def keysym_for_key(name: str) -> int:
    """The X keysym of one canonical deskhand key name (see sandbox/keys.py)."""
    if name in PRINTABLE_KEYS:
        return ord(name)  # ASCII keysyms equal their code points
    if name in MEDIA_KEYSYMS:
        return MEDIA_KEYSYMS[name]
    symbol = MODIFIER_KEYSYMS.get(name) or NAMED_KEYSYMS.get(name)
    keysym = XK.string_to_keysym(symbol) if symbol else X.NoSymbol
    if keysym == X.NoSymbol:
        raise RequestError("bad_action", f"unknown key {name!r}")
    return int(keysym)


def keysym_for_char(char: str) -> int:
    """The keysym that types ``char``: Latin-1 keysyms equal code points, others are Unicode."""
    if char == "\n":
        return int(XK.XK_Return)
    if char == "\t":
        return int(XK.XK_Tab)
    point = ord(char)
    if point < 0x20 or 0x7F <= point < 0xA0:
        raise RequestError("bad_action", f"cannot type control character U+{point:04X}")
    if 0xD800 <= point <= 0xDFFF:
        raise RequestError("bad_action", f"cannot type lone surrogate U+{point:04X}")
    return point if point < 0x100 else 0x01000000 + point


class Keyboard:
    """Presses keysyms through XTest, borrowing unused keycodes for keysyms the map lacks.

    A character such as ``é`` or ``世`` has no key on the server's keymap, so a
    spare (empty) keycode is re-mapped to its keysym, pressed, and later given
    back.  Clients read the new mapping only when they handle the event, so a
    keycode already pressed for another character is re-mapped only after
    ``catch_up`` returned (the executor waits there for the screen to settle,
    the sign that the focused client handled the keys) and at least
    ``SPARE_REUSE_S`` after its last press.
    """

    def __init__(self, desktop: Desktop,
                 catch_up: Callable[[Deadline], None] = lambda deadline: None) -> None:
        self._desktop = desktop
        self._catch_up = catch_up
        self._codes: dict[int, tuple[int, int]] = {}  # keysym -> (keycode, level 0|1)
        self._spares: list[int] = []
        self._borrowed: dict[int, int] = {}  # keycode -> keysym it carries now
        self._last_press: dict[int, float] = {}
        self._load_mapping(find_spares=True)
        self._shift = self._codes[int(XK.XK_Shift_L)][0]

    def _load_mapping(self, *, find_spares: bool = False) -> None:
        info = self._desktop.display.display.info
        first, last = int(info.min_keycode), int(info.max_keycode)
        rows = self._desktop.display.get_keyboard_mapping(first, last - first + 1)
        self._codes.clear()
        for keycode, row in enumerate(rows, start=first):
            if find_spares and keycode > 8 and not any(row):
                self._spares.append(keycode)
            if keycode not in self._borrowed:
                self._index_row(keycode, row)

    def _index_row(self, keycode: int, row: Any) -> None:
        for level in (0, 1):  # group 1 only: reachable with or without shift
            keysym = int(row[level]) if len(row) > level else 0
            if keysym and (keysym not in self._codes or self._codes[keysym][1] > level):
                self._codes[keysym] = (keycode, level)

    def refresh(self) -> None:
        """Re-read the server's keymap (another client changed it)."""
        self._load_mapping()

    def resolve(self, keysym: int, deadline: Deadline) -> tuple[int, bool]:
        """Keycode for ``keysym`` and whether shift must be held for it."""
        for keycode, carried in self._borrowed.items():
            if carried == keysym:
                return keycode, False
        if keysym in self._codes:
            keycode, level = self._codes[keysym]
            return keycode, level == 1
        return self._borrow(keysym, deadline), False

    def _borrow(self, keysym: int, deadline: Deadline) -> int:
        if not self._spares:
            raise RequestError("bad_action", f"no spare keycode to type keysym 0x{keysym:x}")
        keycode = min(self._spares, key=lambda code: self._last_press.get(code, 0.0))
        if keycode in self._borrowed:
            self._desktop.flush()
            self._catch_up(deadline)
        wait = self._last_press.get(keycode, 0.0) + SPARE_REUSE_S - time.monotonic()
        if wait > 0:
            deadline.sleep(wait, "typing")
        self._desktop.display.change_keyboard_mapping(keycode, [(keysym, keysym)])
        self._borrowed[keycode] = keysym
        return keycode

    def tap(self, keysym: int, deadline: Deadline) -> None:
        keycode, shift = self.resolve(keysym, deadline)
        if shift:
            self._desktop.key(self._shift, True)
        self.press(keycode, True)
        self.press(keycode, False)
        if shift:
            self._desktop.key(self._shift, False)
        self._desktop.flush()

    def press(self, keycode: int, down: bool) -> None:
        self._desktop.key(keycode, down)
        self._last_press[keycode] = time.monotonic()

    @contextmanager
    def held(self, keysyms: list[int], deadline: Deadline) -> Iterator[None]:
        """Hold ``keysyms`` down in order (plus shift where a key needs it); release in reverse."""
        codes: list[int] = []
        try:
            for keysym in keysyms:
                keycode, shift = self.resolve(keysym, deadline)
                if shift and self._shift not in codes:
                    codes.insert(0, self._shift)
                    self.press(self._shift, True)
                codes.append(keycode)
                self.press(keycode, True)
            self._desktop.flush()
            yield
        finally:
            for keycode in reversed(codes):
                self.press(keycode, False)
            self._desktop.flush()

    def give_back(self, *, wait: bool = True) -> None:
        """Return every borrowed keycode to NoSymbol; with ``wait``, only once clients had
        ``SPARE_REUSE_S`` to read them."""
        if not self._borrowed:
            return
        latest = max(self._last_press.get(code, 0.0) for code in self._borrowed)
        if wait:
            time.sleep(max(0.0, latest + SPARE_REUSE_S - time.monotonic()))
        for keycode in self._borrowed:
            self._desktop.display.change_keyboard_mapping(keycode, [(X.NoSymbol, X.NoSymbol)])
        self._borrowed.clear()
        self._desktop.sync()

