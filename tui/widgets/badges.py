"""Coloured words for decisions and step results, shared by every table."""

from __future__ import annotations

from rich.text import Text

_EFFECT_STYLES = {
    "allow": "bold black on green",
    "ask": "bold black on yellow",
    "deny": "bold white on red",
    "invalid": "bold white on magenta",
    "error": "bold white on dark_red",
}
_STATUS_STYLES = {
    "done": "green",
    "denied": "red",
    "invalid": "magenta",
    "error": "bold red",
    "pending": "yellow",
    "interrupted": "red",
}
_OUTCOME_STYLES = {
    "done": "green",
    "failed": "red",
    "denied": "red",
    "interrupted": "yellow",
    "error": "bold red",
    "budget": "yellow",
}


def decision_badge(effect: str | None, status: str = "") -> Text:
    """``allow``/``ask``/``deny``/``invalid``/``error`` as a small coloured badge.

    A step the sandbox failed shows ``error`` whatever the policy said.
    """
    label = "error" if status == "error" else (effect or "invalid")
    return Text(f" {label} ", style=_EFFECT_STYLES.get(label, "reverse"))


def status_text(status: str) -> Text:
    """A step's result in its colour."""
    return Text(status, style=_STATUS_STYLES.get(status, ""))


def outcome_text(outcome: str | None) -> Text:
    """A session's outcome in its colour; an open session shows as running."""
    if outcome is None:
        return Text("running", style="cyan")
    return Text(outcome, style=_OUTCOME_STYLES.get(outcome, ""))


_UNDO_SIGNS = {
    "checkpoint": ("◆", "cyan"),
    "skipped": ("◇", "yellow"),
    "rollback": ("⟲", "bold magenta"),
    "refused": ("⟲", "yellow"),
}


def undo_sign(kind: str) -> Text:
    """One cell: ◆ a checkpoint was taken before the step, ◇ it was skipped, ⟲ a rollback
    (yellow: an undo that was refused)."""
    sign, style = _UNDO_SIGNS.get(kind, (" ", ""))
    return Text(sign, style=style)
