"""The seam between the loop and frame redaction: what a frame guard answers.

The loop gives every new frame to its :class:`FrameGuard` before the frame
is stored, shown or given to the planner, and uses the :class:`GuardedFrame`
it gets back instead (:mod:`agent.perception.redaction` is the real one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sandbox.base import Frame


@dataclass(frozen=True, slots=True)
class GuardedFrame:
    """A frame as it may be stored, shown and sent: secrets blacked out.

    ``boxes`` are the redacted regions (never their content); ``withheld``
    says why the frame must not be sent to a model at all ("" when it may).
    """

    frame: Frame
    boxes: tuple[tuple[int, int, int, int], ...] = ()
    withheld: str = ""
    redact_ms: float = 0.0


class FrameGuard(Protocol):
    """Redacts secrets from each new frame before anything else sees it."""

    def remember_secret(self, text: str) -> None: ...

    def guard(self, frame: Frame, *, typed_secret: bool = False) -> GuardedFrame: ...
