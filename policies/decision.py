"""What the policy engine answers, and what it is told about each action."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Effect = Literal["allow", "deny", "ask"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's verdict on one action.

    ``rule_ids`` names every rule that decided it (empty when nothing matched
    and the default deny applied).  ``secret`` is true when typed text looked
    like a secret: the audit log then stores it masked.
    """

    effect: Effect
    rule_ids: tuple[str, ...]
    reason: str
    policy_sha256: str
    secret: bool = False
    # A matching rule asked for a checkpoint of the desktop's files before the action.
    checkpoint: bool = False

    @property
    def allowed(self) -> bool:
        return self.effect == "allow"


@dataclass(frozen=True, slots=True)
class Triage:
    """What intent triage said about the task (issue 6 fills it)."""

    category: str
    risk: Literal["low", "medium", "high"]
    confidence: float


@dataclass(frozen=True, slots=True)
class TypedFromScreen:
    """Typed text that was read off the screen, not asked for by the task.

    ``kind`` is ``command``, ``URL``, ``e-mail address``, ``money amount`` or
    ``credential``; ``box`` is where it was shown (screen pixels, x1/y1
    exclusive) on the frame with ``frame_sha256``.
    """

    kind: str
    box: tuple[int, int, int, int]
    frame_sha256: str

    def describe(self) -> str:
        x0, y0, x1, y1 = self.box
        return f"a {self.kind} shown on screen at ({x0}, {y0})-({x1}, {y1})"


@dataclass(frozen=True, slots=True)
class TargetElement:
    """The on-screen element an action aims at: its role and name, and where it is
    (``box`` in screen pixels, x1/y1 exclusive) and who saw it (``source``: ``a11y``,
    ``vlm`` or ``ocr``), when known."""

    role: str
    name: str
    box: tuple[int, int, int, int] | None = None
    source: str = ""

    def describe(self) -> str:
        """``push button 'Delete'``: how reasons, prompts and the approval card name it."""
        return f"{self.role} {self.name!r}"

    def as_json(self) -> dict[str, Any]:
        return {"role": self.role, "name": self.name,
                "box": list(self.box) if self.box is not None else None, "source": self.source}

    @classmethod
    def from_json(cls, data: object) -> TargetElement | None:
        """The element a stored or proposed ``{role, name, box?, source?}`` describes;
        ``None`` for anything else."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return None
        return cls(role=str(data.get("role", "")), name=data["name"],
                   box=_corners(data.get("box")), source=str(data.get("source", "")))


def _corners(box: object) -> tuple[int, int, int, int] | None:
    if not isinstance(box, list | tuple) or len(box) != 4:
        return None
    x0, y0, x1, y1 = (int(v) for v in box)
    return (x0, y0, x1, y1)


@dataclass(slots=True)
class PolicyContext:
    """Everything the policy may look at besides the action itself.

    Built by the loop for each step; nothing in it comes from the planner's
    own claims about the action.  ``recent_action_times`` are readings of the
    loop's clock when earlier actions ran; ``elapsed_s`` is seconds since the
    session started.
    """

    screen_width: int
    screen_height: int
    window_title: str = ""
    step_index: int = 0
    elapsed_s: float = 0.0
    typed_chars: int = 0
    recent_action_times: list[float] = field(default_factory=list)
    triage: Triage | None = None
    injection_risk: float = 0.0
    injection_reason: str = ""
    # Set for a type action whose text the planner read off the screen.
    typed_from_screen: TypedFromScreen | None = None
    session_grants: set[str] = field(default_factory=set)
    extra: dict[str, Any] = field(default_factory=dict)
    # Where the pointer is, so that a click without coordinates is checked
    # against screen regions at the place it will really land.
    cursor: tuple[int, int] | None = None
    # The loop clock's current reading (the clock of ``recent_action_times``);
    # ``None`` means ``time.monotonic()``, the loop's default clock.
    now: float | None = None
    # The line(s) this action hands to the active window's shell, rebuilt across
    # actions by :mod:`policies.command_line` (``None``: it submits no line, or
    # nobody rebuilt it).  ``line_unknown`` says why the rebuilt line may be
    # wrong (history recall, completion, motion, paste); empty when it is exact.
    submitted_line: str | None = None
    line_unknown: tuple[str, ...] = ()
    # The text a paste action inserts (read from the sandbox's clipboard or
    # primary selection); judged like typed text.  ``None``: not a paste, or unread.
    pasted_text: str | None = None
    # The element a click aims at: the one a script's step named (``click: {role, name}``,
    # ``click_text``), else the smallest one under the point (agent/perception/targets.py);
    # ``None``: nothing known there (no element source, or it did not answer in time).
    target_element: TargetElement | None = None

    @property
    def line_known(self) -> bool:
        return not self.line_unknown
