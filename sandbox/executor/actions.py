"""Performing validated actions through XTest."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import Any

from .keyboard import Keyboard
from .wire import Deadline, RequestError
from .xinput import Desktop

DRAG_STEP_PX = 20  # drags move in steps no longer than this, so toolkits see the motion


class Actions:
    """Performs validated actions; each method returns the action's ``output``."""

    def __init__(self, desktop: Desktop, keyboard: Keyboard) -> None:
        self.desktop = desktop
        self.keyboard = keyboard

    def perform(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        method: Callable[[dict[str, Any], Deadline], dict[str, Any]] = getattr(
            self, "do_" + action["type"])
        output = method(action, deadline)
        self.desktop.sync()
        return output

    def do_screenshot(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        return {}

    def do_zoom(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        return {}

    def do_cursor_position(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        x, y = self.desktop.pointer()
        return {"x": x, "y": y}

    def do_wait(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        deadline.sleep(action["seconds"], "waiting")
        return {}

    def do_key(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        for _ in range(action["repeat"]):
            deadline.check("pressing keys")
            with self.keyboard.held(action["keys"], deadline):
                pass
        return {}

    def do_hold_key(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        with self.keyboard.held(action["keys"], deadline):
            deadline.sleep(action["seconds"], "holding keys")
        return {}

    def do_type(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        keysyms = action["text"]
        for done, keysym in enumerate(keysyms):
            if deadline.remaining() <= 0:
                raise RequestError("deadline_exceeded",
                                   f"deadline passed after typing {done} of {len(keysyms)} "
                                   "characters")
            self.keyboard.tap(keysym, deadline)
        return {}

    def do_mouse_move(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        self.desktop.move(action["x"], action["y"])
        return {}

    def do_click(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        if action["x"] is not None:
            self.desktop.move(action["x"], action["y"])
        with self.keyboard.held(action["modifiers"], deadline):
            for _ in range(action["count"]):
                self.desktop.button(action["button"], True)
                self.desktop.button(action["button"], False)
        return {}

    def do_mouse_down(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        self.desktop.button(action["button"], True)
        return {}

    def do_mouse_up(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        self.desktop.button(action["button"], False)
        return {}

    def do_drag(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        path = action["path"]
        self.desktop.move(*path[0])
        self.desktop.button(action["button"], True)
        try:
            for start, end in itertools.pairwise(path):
                for x, y in _steps(start, end):
                    deadline.check("dragging")
                    self.desktop.move(x, y)
                    self.desktop.flush()
                    time.sleep(0.001)  # distinct motion events, as a hand would make
        finally:
            self.desktop.button(action["button"], False)
        return {}

    def do_scroll(self, action: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        self.desktop.move(action["x"], action["y"])
        dx, dy = action["dx"], action["dy"]
        with self.keyboard.held(action["modifiers"], deadline):
            for wheel, notches in ((5 if dy > 0 else 4, abs(dy)), (7 if dx > 0 else 6, abs(dx))):
                for _ in range(notches):
                    self.desktop.button(wheel, True)
                    self.desktop.button(wheel, False)
        return {}


def _steps(start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
    """Points from just after ``start`` to ``end``, no step longer than DRAG_STEP_PX."""
    count = max(1, math.ceil(math.dist(start, end) / DRAG_STEP_PX))
    return [(round(start[0] + (end[0] - start[0]) * i / count),
             round(start[1] + (end[1] - start[1]) * i / count)) for i in range(1, count + 1)]

