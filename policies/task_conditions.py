"""Conditions about where typed text came from and what the task allowed.

``typed_from_screen``: the loop found the typed text on a recent screen and
not in the task (``PolicyContext.typed_from_screen``).

``task_look_only``: triage said the person asked only to look (category
``look_only``: summarise, read, find), yet the action changes something —
it types into a terminal, submits, or deletes.  An agent that was asked to
read and starts to act was most likely talked into it by what it read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from policies.conditions import Probe
from sandbox.actions import HoldKey, Key, TypeText

LOOK_ONLY_CATEGORY = "look_only"
_TERMINAL_TITLE = re.compile(
    r"terminal|xterm|konsole|urxvt|alacritty|kitty|tilix|terminator|\bbash\b|\bzsh\b|\bshell\b"
    r"|\bcmd\b|powershell|^[\w.-]+@[\w.-]+:", re.IGNORECASE)
_DELETE_COMMAND = re.compile(r"(^|[\s;&|])(rm|rmdir|unlink|shred|del|trash|trash-put|gio trash)\s",
                             re.IGNORECASE)
_SUBMIT_KEYS = frozenset({"enter", "kp_enter"})
_DELETE_KEYS = frozenset({"delete", "kp_delete"})


def look_only_change(probe: Probe) -> str | None:
    """What the action changes, in words, when it changes something; else None."""
    action = probe.action
    if isinstance(action, TypeText):
        if _TERMINAL_TITLE.search(probe.context.window_title):
            return "types into a terminal"
        if _DELETE_COMMAND.search(action.text):
            return "types a delete command"
        if action.text.endswith("\n"):
            return "submits (the text ends with Enter)"
        return None
    if isinstance(action, Key | HoldKey):
        pressed = frozenset(action.keys)
        if pressed & _SUBMIT_KEYS:
            return "submits (presses Enter)"
        if pressed & _DELETE_KEYS:
            return "deletes (presses Delete)"
    return None


def _look_only(probe: Probe) -> bool:
    triage = probe.context.triage
    return triage is not None and triage.category.lower() == LOOK_ONLY_CATEGORY


@dataclass(frozen=True, slots=True)
class TaskLookOnlyButChanges:
    """Holds (for ``expected=True``) when a look-only task's action changes something."""

    expected: bool

    def test(self, probe: Probe) -> bool:
        return (_look_only(probe) and look_only_change(probe) is not None) == self.expected

    def why(self, probe: Probe) -> str:
        if not _look_only(probe):
            return "the task was not triaged look-only"
        change = look_only_change(probe)
        if change is None:
            return "the task was look-only and the action changes nothing"
        return f"the task was look-only, and the action {change}"


@dataclass(frozen=True, slots=True)
class TypedFromScreenIs:
    """Holds (for ``expected=True``) when the typed text was read off the screen."""

    expected: bool

    def test(self, probe: Probe) -> bool:
        copied = probe.text is not None and probe.context.typed_from_screen is not None
        return copied == self.expected

    def why(self, probe: Probe) -> str:
        copied = probe.context.typed_from_screen
        if probe.text is None or copied is None:
            return "the typed text was not read off the screen"
        return f"the typed text is {copied.describe()}, and the task did not ask for it"
