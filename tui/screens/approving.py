"""A screen that holds the approval queue and answers it with single keys."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.screen import Screen

from tui.widgets.approval_queue import ApprovalQueue


class ApprovingScreen(Screen[None]):
    """Base of the screens with an :class:`ApprovalQueue`: ``a``, ``s`` and ``d`` answer it,
    ``f`` writes the request's frame at full resolution to a PNG file and shows its path."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve once"),
        Binding("s", "approve_session", "Allow rule for session"),
        Binding("d", "deny", "Deny"),
        Binding("f", "full_frame", "Full frame"),
    ]

    def action_approve(self) -> None:
        self.query_one(ApprovalQueue).answer(approved=True, scope="once")

    def action_approve_session(self) -> None:
        self.query_one(ApprovalQueue).answer(approved=True, scope="session")

    def action_deny(self) -> None:
        self.query_one(ApprovalQueue).answer(approved=False)

    def action_full_frame(self) -> None:
        path = self.query_one(ApprovalQueue).save_full_frame()
        if path is not None:
            self.notify(f"full frame: {path}")
