"""A screen that holds the approval queue and answers it with single keys."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.screen import Screen

from tui.widgets.approval_queue import ApprovalQueue


class ApprovingScreen(Screen[None]):
    """Base of the screens with an :class:`ApprovalQueue`: ``a``, ``s`` and ``d`` answer it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve once"),
        Binding("s", "approve_session", "Allow rule for session"),
        Binding("d", "deny", "Deny"),
    ]

    def action_approve(self) -> None:
        self.query_one(ApprovalQueue).answer(approved=True, scope="once")

    def action_approve_session(self) -> None:
        self.query_one(ApprovalQueue).answer(approved=True, scope="session")

    def action_deny(self) -> None:
        self.query_one(ApprovalQueue).answer(approved=False)
