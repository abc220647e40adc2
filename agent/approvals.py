"""Human approval of risky steps.

Every approval goes through the audit database (the *broker*): the loop's
approver writes a request row, and whoever answers first wins — the
terminal prompt of ``deskhand run``, a TUI in this process, or a TUI in
another terminal attached to the same database.  No answer before the
timeout means *deny*; end of input (a closed terminal), Ctrl-C, SIGTERM and
SIGHUP deny the step *and stop the run* (:mod:`agent.interrupts`).

An approval is bound to the frame it was shown with: before the action runs
the loop compares the region around its target (:func:`frames_match_near`)
and asks again when it changed.
"""

from __future__ import annotations

import getpass
import io
import os
import select
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from PIL import Image, ImageChops

from agent.interrupts import TERMINAL_CLOSED, interrupted_reason, stop_now
from audit.records import ApprovalAnswer, Scope
from policies.decision import Decision, TargetElement
from sandbox.actions import Action, TypeText
from sandbox.base import Frame

# Pixels around each target point that must look the same as when approved.
TARGET_MARGIN_PX = 48
# For actions without a target point (typing, keys) the whole screen must look
# the same, except for a change that fits in a blinking caret's box.
CARET_BOX_PX = (32, 48)


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    session_id: str
    step_id: int
    action: Action
    decision: Decision
    frame: Frame
    timeout_s: float
    target: TargetElement | None = None
    """The element the action aims at (role, name), when the run knows it."""

    def summary(self) -> str:
        """The action in words, with secret text masked, and the element it lands on."""
        action = self.action
        if self.decision.secret and isinstance(action, TypeText):
            return f"type •••• ({len(action.text)} chars, looks like a secret)"
        on = f" on {self.target.describe()}" if self.target is not None else ""
        return action.describe() + on


class Approver(Protocol):
    """Answers an approval request; ``None`` means nobody answered in time (deny)."""

    def request(self, request: ApprovalRequest) -> ApprovalAnswer | None: ...


class BrokerLog(Protocol):
    """The audit log's approval broker."""

    def request_approval(self, step_id: int, *, frame_sha256: str, summary: str,
                         rule_ids: tuple[str, ...] | list[str], reason: str,
                         timeout_s: float) -> int: ...

    def answer_approval(self, approval_id: int, *, approved: bool, scope: Scope,
                        approver: str, channel: str) -> bool: ...

    def wait_for_answer(self, approval_id: int, *, timeout_s: float,
                        poll_s: float = 0.05) -> ApprovalAnswer | None: ...

    def record_event(self, session_id: str, kind: str, data: dict[str, Any]) -> None: ...


NO_APPROVER = "nobody (no approver attached)"
# How often a run without a terminal looks for an answer and for its approvers.
PRESENCE_POLL_S = 0.1
# The event beside each approval request that says what the frame alone does not.
APPROVAL_CONTEXT = "approval_context"


class BrokerApprover:
    """Writes each request to the database and waits for any attached approver.

    With a ``prompt`` (a terminal), the human here can answer too; the first
    answer recorded in the database wins.  Without one, ``anyone_attached``
    (when given) says whether an approver is attached to the database at all
    (``deskhand tui --attach``): if so the request waits for it up to its
    timeout, if not it is denied at once and recorded as such.  ``say``
    tells the person watching the output which of the two happened.
    """

    def __init__(self, log: BrokerLog, *, prompt: TerminalPrompt | None = None,
                 anyone_attached: Callable[[], bool] | None = None,
                 say: Callable[[str], None] = lambda _text: None) -> None:
        self.log = log
        self.prompt = prompt
        self.anyone_attached = anyone_attached
        self.say = say

    def request(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        approval_id = self.log.request_approval(
            request.step_id, frame_sha256=request.frame.sha256, summary=request.summary(),
            rule_ids=list(request.decision.rule_ids), reason=request.decision.reason,
            timeout_s=request.timeout_s,
        )
        try:
            self._record_context(approval_id, request)
            if self.prompt is not None:
                self._ask_here(approval_id, request)
                return self.log.wait_for_answer(approval_id, timeout_s=0)
            if self.anyone_attached is not None and not self.anyone_attached():
                return self._deny_unattended(approval_id, request)
            if self.anyone_attached is None:
                return self.log.wait_for_answer(approval_id, timeout_s=request.timeout_s)
            self.say(f"waiting up to {request.timeout_s:g} s for an attached approver: "
                     f"{request.summary()}")
            return self._wait_while_attached(approval_id, request)
        except KeyboardInterrupt as exc:
            self._deny_interrupted(approval_id, exc)
            raise

    def _wait_while_attached(self, approval_id: int,
                             request: ApprovalRequest) -> ApprovalAnswer | None:
        """Wait for the attached approvers' answer; deny at once if the last one leaves."""
        assert self.anyone_attached is not None
        deadline = time.monotonic() + request.timeout_s
        while time.monotonic() < deadline:
            answer = self.log.wait_for_answer(approval_id, timeout_s=0)
            if answer is not None:
                return answer
            if not self.anyone_attached():
                return self._deny_unattended(approval_id, request)
            time.sleep(PRESENCE_POLL_S)
        return self.log.wait_for_answer(approval_id, timeout_s=PRESENCE_POLL_S)

    def _record_context(self, approval_id: int, request: ApprovalRequest) -> None:
        """What an approver elsewhere needs beside the frame: which window had the focus."""
        frame = request.frame
        self.log.record_event(request.session_id, APPROVAL_CONTEXT, {
            "approval_id": approval_id, "step_id": request.step_id,
            "window_title": frame.window_title,
            "cursor": list(frame.cursor) if frame.cursor else None,
        })

    def _deny_unattended(self, approval_id: int, request: ApprovalRequest) -> ApprovalAnswer | None:
        """Nobody could answer: deny now rather than wait out the timeout."""
        self.say(f"no approver attached: denied {request.summary()} "
                 "(answer from a terminal, or attach one with `deskhand tui --attach`)")
        self.log.answer_approval(approval_id, approved=False, scope="once",
                                 approver=NO_APPROVER, channel="none")
        return self.log.wait_for_answer(approval_id, timeout_s=0)

    def _deny_interrupted(self, approval_id: int, exc: KeyboardInterrupt) -> None:
        """A stop while waiting denies the step, recorded with what stopped it."""
        who = self.prompt.who if self.prompt is not None else "deskhand"
        self.log.answer_approval(approval_id, approved=False, scope="once",
                                 approver=f"{who} ({interrupted_reason(exc)})",
                                 channel="terminal" if self.prompt is not None else "signal")

    def _ask_here(self, approval_id: int, request: ApprovalRequest) -> None:
        assert self.prompt is not None
        deadline = time.monotonic() + request.timeout_s
        self.prompt.show(request)
        while (remaining := deadline - time.monotonic()) > 0:
            if self._answered_elsewhere(approval_id):
                self.prompt.say("answered from another approver")
                return
            choice = self.prompt.read_choice(min(remaining, 0.2))
            if choice == "":
                continue
            if choice == "eof":
                stop_now(TERMINAL_CLOSED)
            approved, scope = _CHOICES.get(choice, (False, "once"))
            self.log.answer_approval(approval_id, approved=approved, scope=scope,
                                     approver=self.prompt.who, channel="terminal")
            return
        self.prompt.say("no answer in time: denied")

    def _answered_elsewhere(self, approval_id: int) -> bool:
        return self.log.wait_for_answer(approval_id, timeout_s=0) is not None


_CHOICES: dict[str, tuple[bool, Scope]] = {
    "y": (True, "once"), "yes": (True, "once"), "s": (True, "session"),
    "n": (False, "once"), "no": (False, "once"),
}


class TerminalPrompt:
    """Asks on a terminal: y (once), s (for this session), n (deny)."""

    def __init__(self, *, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
                 who: str | None = None) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.who = who or f"{getpass.getuser()}@tty"

    def show(self, request: ApprovalRequest) -> None:
        decision = request.decision
        rules = ", ".join(decision.rule_ids) or "default"
        self.stdout.write(
            f"\n  approval needed: {request.summary()}\n"
            f"    rule {rules}: {decision.reason}\n"
            f"    window: {request.frame.window_title or '(none)'}\n"
            f"    [y] approve once  [s] allow this rule for the session  [n] deny"
            f"  (denied after {request.timeout_s:g} s) > "
        )
        self.stdout.flush()

    def say(self, text: str) -> None:
        self.stdout.write(f"\n    {text}\n")
        self.stdout.flush()

    def read_choice(self, wait_s: float) -> str:
        """One answer, ``""`` if none yet, ``eof`` when input is gone.

        Ctrl-C is not an answer: it propagates and stops the run (the broker
        records the step as denied on the way out).
        """
        try:
            ready, _, _ = select.select([self.stdin], [], [], wait_s)
            if not ready:
                return ""
            line = self.stdin.readline()
        except (OSError, ValueError):
            return "eof"
        return line.strip().lower() if line else "eof"


def stdin_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (ValueError, OSError):
        return False


def frames_match_near(shown: Frame, current: Frame, action: Action) -> bool:
    """True when the screen around ``action``'s target still looks as it did when approved."""
    if shown.sha256 == current.sha256:
        return True
    if (shown.width, shown.height) != (current.width, current.height):
        return False
    before, after = _decode(shown), _decode(current)
    points = action.points()
    if not points:
        return shown.window_title == current.window_title and _at_most_a_caret(before, after)
    return all(_same_box(before, after, p.x, p.y) for p in points)


def _decode(frame: Frame) -> Image.Image:
    return Image.open(io.BytesIO(frame.png)).convert("RGB")


def _same_box(before: Image.Image, after: Image.Image, x: int, y: int) -> bool:
    box = (max(0, x - TARGET_MARGIN_PX), max(0, y - TARGET_MARGIN_PX),
           min(before.width, x + TARGET_MARGIN_PX), min(before.height, y + TARGET_MARGIN_PX))
    return ImageChops.difference(before.crop(box), after.crop(box)).getbbox() is None


def _at_most_a_caret(before: Image.Image, after: Image.Image) -> bool:
    box = ImageChops.difference(before, after).getbbox()
    if box is None:
        return True
    return box[2] - box[0] <= CARET_BOX_PX[0] and box[3] - box[1] <= CARET_BOX_PX[1]
