"""The confirmation before undoing a step: what comes back, and what cannot."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from agent.undo import CANNOT_RESTORE


class UndoConfirmScreen(ModalScreen[bool]):
    """Asks "undo this step?"; dismisses with True to undo, False to leave things be."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Undo"),
        Binding("n,escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, *, step: str, restores: str) -> None:
        super().__init__()
        self.step = step
        self.restores = restores

    def compose(self) -> ComposeResult:
        with Vertical(id="undo-dialog"):
            yield Static(f"Undo {self.step}?", id="undo-title")
            yield Static(self.restores, id="undo-restores")
            yield Static(CANNOT_RESTORE, id="undo-cannot")
            with Horizontal(id="undo-buttons"):
                yield Button("Undo  [y]", variant="error", id="undo-yes")
                yield Button("Cancel  [n]", id="undo-no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "undo-yes")

    def action_answer(self, undo: bool) -> None:
        self.dismiss(undo)
