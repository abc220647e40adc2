"""What every sandbox that runs the executor shares: a once-only lifecycle
(new → starting → running → stopped) and the calls that go through the
executor's channel.  A backend says how to bring its desktop up
(:meth:`ExecutorSandbox._open`) and down (:meth:`ExecutorSandbox._teardown`).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import Any, Self

from sandbox.actions import Action
from sandbox.base import CheckResult, ExecResult, Frame, ShellJudge, Size, Viewer, open_gate
from sandbox.channel import (
    ExecutorChannel,
    Reply,
    SettleDefaults,
    check_result_from_reply,
    exec_result_from_reply,
    execute_args,
    frame_from_reply,
    profile_named,
)
from sandbox.errors import SandboxCrashed, SandboxError, SandboxStateError
from sandbox.executor.settle import OBSERVING
from sandbox.file_ops import SandboxFiles

SCREENSHOT_DEADLINE_S = 10.0
SELECTION_DEADLINE_S = 3.0
ELEMENTS_DEADLINE_S = 3.0
# A command gets its own timeout; the channel waits this much longer for the answer.
CHECK_GRACE_S = 5.0


class ExecutorSandbox(ABC):
    """Base of the local and Docker sandboxes (see the module docstring)."""

    kind: str

    def __init__(self, *, size: Size, settle_defaults: SettleDefaults) -> None:
        self._size = size
        self._settle_defaults = settle_defaults
        self._state = "new"
        self._channel: ExecutorChannel | None = None
        self._shell_judge: ShellJudge = open_gate

    @property
    def size(self) -> Size:
        return self._size

    @property
    def viewer(self) -> Viewer | None:
        return None

    # --- lifecycle ---------------------------------------------------------------------

    def _close_channel(self) -> None:
        """Close the channel to the executor, once (teardown may run twice)."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bring the desktop up; on any failure everything started so far is torn down."""
        if self._state != "new":
            raise SandboxStateError(f"a {self.kind} sandbox cannot start: it is {self._state} "
                                    "(a sandbox is used once; make a new one)")
        self._state = "starting"
        try:
            self._open()
        except BaseException:
            self._teardown()
            self._state = "stopped"
            raise
        self._state = "running"
        if self._channel is not None:
            self._channel.on_event(self._on_event)

    def stop(self) -> None:
        """End the desktop and everything it started.  Safe to call twice."""
        if self._state in ("new", "stopped"):
            self._state = "stopped"
            return
        if self._channel is not None and self._state == "running":
            with contextlib.suppress(SandboxError):  # the teardown makes sure anyway
                self._channel.call("shutdown", deadline_s=1.0)
        self._teardown()
        self._state = "stopped"

    @abstractmethod
    def _open(self) -> None:
        """Start the desktop and set ``self._channel`` to its executor."""

    @abstractmethod
    def _teardown(self) -> None:
        """Stop whatever ``_open`` started, however far it got."""

    # --- use ---------------------------------------------------------------------------

    def screenshot(self) -> Frame:
        """The screen as it is now."""
        self._require_running()
        return frame_from_reply(self._call("screenshot", {}, SCREENSHOT_DEADLINE_S))

    def execute(self, action: Action, *, settle: bool = True, deadline_s: float = 30.0,
                settle_profile: str | None = None) -> ExecResult:
        """Run one action; with ``settle``, the frame is taken once the screen settled,
        waiting as the profile ``settle_profile`` says (default: the sandbox's own).

        Off-screen points are refused by the executor itself (the loop has
        validated before this; the sandbox trusts no caller).
        """
        self._require_running()
        profile = self._settle_defaults if settle_profile is None else \
            profile_named(settle_profile)
        args = execute_args(action, settle=settle, defaults=profile)
        applied = profile.name if settle and action.type not in OBSERVING else ""
        return exec_result_from_reply(self._call("execute", args, deadline_s), profile=applied)

    def check(self, argv: list[str], *, timeout_s: float = 30.0) -> CheckResult:
        """Run ``argv`` inside the sandbox, from its user's home (checkers only)."""
        self._require_running()
        args = {"argv": list(argv), "timeout_s": timeout_s}
        return check_result_from_reply(self._call("run", args, timeout_s + CHECK_GRACE_S))

    def serve_shell_gate(self, judge: ShellJudge) -> None:
        """Judge the desktop shells' commands with ``judge`` (see ``executor/gate.py``)."""
        self._shell_judge = judge

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("event") != "shell_command":
            return
        try:
            allowed, reason = self._shell_judge(str(event.get("line", "")))
        except Exception as exc:  # the gate fails closed
            allowed, reason = False, f"the command could not be judged ({type(exc).__name__})"
        with contextlib.suppress(SandboxError):  # a sandbox that is going away refuses anyway
            self._call("gate_verdict", {"gate": event.get("gate"), "allow": allowed,
                                        "reason": reason}, SELECTION_DEADLINE_S)

    def read_selection(self, name: str = "clipboard") -> str | None:
        """The text a paste of ``name`` (``clipboard`` or ``primary``) would insert, if known."""
        self._require_running()
        text = self._call("selection", {"name": name}, SELECTION_DEADLINE_S).result.get("text")
        return text if isinstance(text, str) else None

    def elements(self) -> dict[str, Any]:
        """The active window's accessibility tree, as the executor's ``elements`` op reads it."""
        self._require_running()
        return dict(self._call("elements", {}, ELEMENTS_DEADLINE_S).result)

    @property
    def files(self) -> SandboxFiles:
        """The desktop's files through the executor (what checkpoints move)."""
        self._require_running()
        return SandboxFiles(self._call)

    @property
    def writable_roots(self) -> tuple[str, ...]:
        """The folders the desktop writes to (its home and /tmp): what checkpoints cover."""
        return ("~", "/tmp")

    def _require_running(self) -> None:
        if self._state != "running":
            raise SandboxStateError(f"the {self.kind} sandbox is {self._state}, not running")

    def _call(self, op: str, args: dict[str, Any], deadline_s: float, body: bytes = b"") -> Reply:
        if self._state not in ("running", "starting") or self._channel is None:
            raise SandboxStateError(f"the {self.kind} sandbox is {self._state}: cannot {op}")
        try:
            return self._channel.call(op, args, deadline_s=deadline_s, body=body)
        except SandboxCrashed as exc:
            raise self._crashed(str(exc)) from exc

    def _crashed(self, message: str) -> SandboxCrashed:
        """The error for a dead executor; backends add what they know of why."""
        return SandboxCrashed(message)
