"""The sandbox seam: what every backend (local Xvfb, Docker, fake) provides.

A sandbox is a throw-away desktop.  It is opened, used and closed::

    with LocalSandbox(settings) as sandbox:
        frame = sandbox.screenshot()
        result = sandbox.execute(Click(x=10, y=20))

Using a sandbox that is not running raises :class:`SandboxStateError`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sandbox.actions import Action


@dataclass(frozen=True, slots=True)
class Size:
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"

    @classmethod
    def parse(cls, text: str) -> Size:
        """Parse ``1280x800``."""
        try:
            w, h = (int(part) for part in text.lower().split("x"))
        except ValueError:
            raise ValueError(f"screen size must look like 1280x800, not {text!r}") from None
        if not (64 <= w <= 8192 and 64 <= h <= 8192):
            raise ValueError(f"screen size {text} is out of range (64..8192 per side)")
        return cls(w, h)


@dataclass(frozen=True, slots=True)
class Frame:
    """One observation of the screen: PNG bytes plus what else was true then."""

    png: bytes
    width: int
    height: int
    sha256: str
    window_title: str = ""
    cursor: tuple[int, int] = (0, 0)
    captured_at: float = field(default_factory=time.time)

    @classmethod
    def from_png(cls, png: bytes, width: int, height: int, **meta: Any) -> Frame:
        return cls(png=png, width=width, height=height, sha256=hashlib.sha256(png).hexdigest(),
                   **meta)

    @property
    def size(self) -> Size:
        return Size(self.width, self.height)


@dataclass(frozen=True, slots=True)
class SettleReport:
    """How the screen settled after an action."""

    changed: bool
    stable: bool
    settle_ms: float
    profile: str = ""
    """The settle profile the wait followed (``fast``, ``model``; empty when none applied)."""
    reaction_ms: float | None = None
    """How long the screen took to show the first change; ``None`` when it showed none."""


@dataclass(frozen=True, slots=True)
class ExecResult:
    """What running one action returned.

    ``output`` holds action-specific data (for example the cursor position, or
    ``{"zoom_png": ...}`` is never here: a zoom returns its image as ``frame``).
    ``frame`` is the screen after the action settled.
    """

    output: dict[str, Any]
    frame: Frame
    settle: SettleReport
    duration_ms: float


@dataclass(frozen=True, slots=True)
class CheckResult:
    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class Viewer:
    """How a human watches the sandbox over VNC."""

    host: str
    port: int
    password: str
    view_only: bool = True

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


# Judges one command an interactive shell in the sandbox is about to run:
# (allowed, reason).  See sandbox/executor/gate.py.
ShellJudge = Callable[[str], tuple[bool, str]]


def open_gate(line: str) -> tuple[bool, str]:
    """The judge while no run watches the sandbox: nobody acts but its owner."""
    return True, "no run is watching this sandbox"


@runtime_checkable
class Sandbox(Protocol):
    """A desktop the agent can see and act on."""

    kind: str

    @property
    def size(self) -> Size: ...

    @property
    def viewer(self) -> Viewer | None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def __enter__(self) -> Sandbox: ...

    def __exit__(self, *exc: object) -> None: ...

    def screenshot(self) -> Frame: ...

    def execute(self, action: Action, *, settle: bool = True, deadline_s: float = 30.0,
                settle_profile: str | None = None) -> ExecResult:
        """Run one action and return the screen once it settled.

        ``settle_profile`` names how to wait (see ``sandbox/executor/settle.py``:
        ``fast`` for scripts, ``model`` for model planners); ``None`` means the
        sandbox's own default.
        """
        ...

    def check(self, argv: list[str], *, timeout_s: float = 30.0) -> CheckResult:
        """Run a command inside the sandbox (test-suite checkers only, never the planner)."""
        ...

    def read_selection(self, name: str = "clipboard") -> str | None:
        """What pasting ``name`` (``clipboard`` or ``primary``) would insert; ``None``: unknown.

        The loop reads it when a paste is proposed, so that the policy judges
        the pasted text like typed text.
        """
        ...

    def elements(self) -> dict[str, Any]:
        """The active window's accessibility tree: ``{available, reason?, elements: [{role,
        name, states, value, box}]}`` with boxes in screen pixels (sandbox/executor/a11y.py)."""
        ...

    def serve_shell_gate(self, judge: ShellJudge) -> None:
        """Judge with ``judge`` every command the desktop's interactive shells run (second gate).

        ``judge`` is called on a thread of the sandbox's own; a sandbox
        without the gate never calls it.
        """
        ...
