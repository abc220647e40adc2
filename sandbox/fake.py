"""A sandbox with no desktop behind it, for fast tests of the loop, policy and TUI.

It keeps a tiny model of a screen — a text buffer that typing and keys edit,
the pointer, the last click — renders it with Pillow, and remembers every
action it ran.  Nothing surprising: it obeys the same state machine and size
checks as the real backends.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw

from sandbox.actions import (
    Action,
    Click,
    CursorPosition,
    Drag,
    Key,
    MouseMove,
    Scroll,
    TypeText,
    Zoom,
    validate_for_screen,
)
from sandbox.base import (
    CheckResult,
    ExecResult,
    Frame,
    SettleReport,
    ShellJudge,
    Size,
    Viewer,
    open_gate,
)
from sandbox.errors import SandboxStateError

_BACKGROUND = (32, 36, 44)
_TEXT = (230, 230, 230)


@dataclass
class _Screen:
    lines: list[str] = field(default_factory=lambda: [""])
    pointer: tuple[int, int] = (0, 0)
    last_click: tuple[int, int] | None = None
    title: str = "fake desktop"


class FakeSandbox:
    """An in-memory :class:`~sandbox.base.Sandbox`."""

    kind = "fake"

    def __init__(self, *, size: Size = Size(1280, 800)) -> None:
        self._size = size
        self._screen = _Screen()
        self._state = "new"
        self.executed: list[Action] = []
        # What a paste would insert, by selection name (``clipboard``, ``primary``).
        self.selections: dict[str, str] = {}
        self.a11y_elements: list[dict[str, Any]] = []  # what elements() reports (tests set it)
        self.shell_judge: ShellJudge = open_gate

    @property
    def size(self) -> Size:
        return self._size

    @property
    def viewer(self) -> Viewer | None:
        return None

    @property
    def typed_text(self) -> str:
        return "\n".join(self._screen.lines)

    def start(self) -> None:
        if self._state != "new":
            raise SandboxStateError(f"fake sandbox cannot start: it is {self._state}")
        self._state = "running"

    def stop(self) -> None:
        self._state = "stopped"

    def __enter__(self) -> FakeSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def screenshot(self) -> Frame:
        self._require_running()
        return self._render()

    def execute(self, action: Action, *, settle: bool = True, deadline_s: float = 30.0,
                settle_profile: str | None = None) -> ExecResult:
        self._require_running()
        validate_for_screen(action, self._size.width, self._size.height)
        started = time.perf_counter()
        before = self._render()
        output = self._apply(action)
        self.executed.append(action)
        frame = self._zoom(action) if isinstance(action, Zoom) else self._render()
        return ExecResult(
            output=output,
            frame=frame,
            settle=SettleReport(changed=frame.sha256 != before.sha256, stable=True, settle_ms=0.0),
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    def check(self, argv: list[str], *, timeout_s: float = 30.0) -> CheckResult:
        self._require_running()
        return CheckResult(exit_code=127, stdout="", stderr="the fake sandbox runs no commands")

    def serve_shell_gate(self, judge: ShellJudge) -> None:
        self.shell_judge = judge  # the fake desktop has no shell; tests may call it

    def read_selection(self, name: str = "clipboard") -> str | None:
        self._require_running()
        return self.selections.get(name)

    def elements(self) -> dict[str, Any]:
        self._require_running()
        return {"available": bool(self.a11y_elements), "elements": list(self.a11y_elements),
                **({} if self.a11y_elements else {"reason": "the fake desktop has no tree"})}

    def _require_running(self) -> None:
        if self._state != "running":
            raise SandboxStateError(f"fake sandbox is {self._state}, not running")

    def _apply(self, action: Action) -> dict[str, object]:
        screen = self._screen
        if isinstance(action, TypeText):
            self._type(action.text)
        elif isinstance(action, Key) and action.keys == ["enter"]:
            screen.lines.extend([""] * action.repeat)
        elif isinstance(action, Key) and action.keys == ["backspace"]:
            screen.lines[-1] = screen.lines[-1][: -action.repeat]
        elif isinstance(action, MouseMove | Scroll):
            screen.pointer = (action.x, action.y)
        elif isinstance(action, Click) and action.x is not None and action.y is not None:
            screen.pointer = screen.last_click = (action.x, action.y)
        elif isinstance(action, Drag):
            screen.pointer = (action.path[-1].x, action.path[-1].y)
        elif isinstance(action, CursorPosition):
            return {"x": screen.pointer[0], "y": screen.pointer[1]}
        return {}

    def _type(self, text: str) -> None:
        lines = self._screen.lines
        first, *rest = text.split("\n")
        lines[-1] += first
        lines.extend(rest)

    def _render(self) -> Frame:
        image = self._draw()
        return self._encode(image)

    def _draw(self) -> Image.Image:
        image = Image.new("RGB", (self._size.width, self._size.height), _BACKGROUND)
        draw = ImageDraw.Draw(image)
        draw.text((8, 4), self._screen.title, fill=_TEXT)
        for row, line in enumerate(self._screen.lines[-40:]):
            draw.text((8, 24 + 14 * row), line, fill=_TEXT)
        if self._screen.last_click is not None:
            x, y = self._screen.last_click
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), outline=(255, 80, 80))
        return image

    def _zoom(self, action: Zoom) -> Frame:
        region = self._draw().crop((action.x0, action.y0, action.x1, action.y1))
        return self._encode(region)

    def _encode(self, image: Image.Image) -> Frame:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        return Frame.from_png(buffer.getvalue(), image.width, image.height,
                              window_title=self._screen.title, cursor=self._screen.pointer)
