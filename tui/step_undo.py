"""The ``u`` key: undo a step of a live run, from the timeline or the approval history.

:class:`StepUndo` checks that there is something to undo (the run is live, the step
has a checkpoint that was taken), shows what the checkpoint puts back and what
undo cannot restore, and on confirmation asks the run exactly as ``deskhand
undo`` does: an ``undo_request`` event in the audit database, which the run
serves before its next step (:mod:`agent.undo`), whether it runs in this
process or in another.  The answer is awaited on a timer, never blocking the UI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.screen import Screen
from textual.timer import Timer

from agent.undo import nothing_to_undo, restore_summary
from agent.undo_cli import ANSWER_TIMEOUT_S
from audit.checkpoints import Manifest
from audit.errors import AuditError
from tui.screens.undo_confirm import UndoConfirmScreen
from tui.store import TuiStore

ANSWER_POLL_S = 0.2
CHOOSE_A_STEP = "choose a step in the timeline or the approval history, then press u"


@dataclass(frozen=True, slots=True)
class UndoTarget:
    """The step a row shows: its session, its index and what it did."""

    session_id: str
    step_index: int
    description: str


@dataclass(slots=True)
class _Waiting:
    target: UndoTarget
    after: int
    deadline: float
    timer: Timer


class StepUndo:
    """Confirms, requests and follows one undo at a time for ``screen``; ``on_answer`` is
    called once the run has answered (the screen then redraws its marks)."""

    def __init__(self, screen: Screen[Any], store: TuiStore,
                 on_answer: Callable[[], None] = lambda: None) -> None:
        self.screen = screen
        self.store = store
        self.on_answer = on_answer
        self.waiting: _Waiting | None = None

    def ask(self, target: UndoTarget | None) -> None:
        """Confirm undoing ``target``, or say (a notification) why there is nothing to undo."""
        if target is None:
            self.screen.notify(CHOOSE_A_STEP, severity="warning")
            return
        try:
            found = self.checkpoint_of(target)
        except AuditError as exc:
            found = f"cannot read the audit log: {exc}"
        if isinstance(found, str):
            self.screen.notify(found, title="nothing to undo", severity="warning")
            return
        confirm = UndoConfirmScreen(step=f"step {target.step_index} ({target.description})",
                                    restores=restore_summary(found, target.step_index))
        self.screen.app.push_screen(confirm, callback=partial(self._confirmed, target))

    def checkpoint_of(self, target: UndoTarget) -> Manifest | str:
        """The files undoing ``target`` would put back, or why it would change nothing."""
        if self.waiting is not None:
            return (f"the undo of step {self.waiting.target.step_index} is still waiting for "
                    "the run's answer")
        if not self.store.run_is_live(target.session_id):
            return ("this session's run has ended and its sandbox is gone, so there is "
                    "nothing to undo")
        checkpoint = self.store.checkpoint_before(target.session_id, target.step_index)
        if checkpoint is not None and checkpoint.manifest is not None:
            return checkpoint.manifest
        why = nothing_to_undo(checkpoint, target.step_index)
        if checkpoint is None and not self.store.takes_checkpoints(target.session_id):
            why += " (this run has taken none: runs in the docker sandbox take them)"
        return f"{why}; nothing was changed"

    def _confirmed(self, target: UndoTarget, undo: bool | None) -> None:
        if not undo:
            return
        try:
            after = self.store.request_undo(target.session_id, target.step_index)
        except AuditError as exc:
            self.screen.notify(f"the undo was not asked: {exc}", severity="error")
            return
        self.screen.notify(f"undo of step {target.step_index} asked: the run puts the files "
                           "back before its next step", title="undo")
        timer = self.screen.set_interval(ANSWER_POLL_S, self._poll)
        self.waiting = _Waiting(target, after, time.monotonic() + ANSWER_TIMEOUT_S, timer)

    def _poll(self) -> None:
        waiting = self.waiting
        if waiting is None:
            return
        try:
            answer = self.store.undo_answer(waiting.target.session_id, waiting.after)
        except AuditError:
            answer = None  # a busy database: try again at the next tick
        ended = answer is None and not self._run_is_live(waiting.target.session_id)
        if answer is None and not ended and time.monotonic() < waiting.deadline:
            return
        waiting.timer.stop()
        self.waiting = None
        if ended:
            self.screen.notify("the run ended before it served the undo, and its sandbox is "
                               "gone; nothing was undone", severity="error")
            return
        if answer is None:
            self.screen.notify(f"the run did not answer within {ANSWER_TIMEOUT_S:g} s (it "
                               "serves undo between steps; is it waiting on something?)",
                               severity="error")
            return
        self.screen.notify(answer, title="undo",
                           severity="information" if answer.startswith("Undone") else "warning")
        self.on_answer()

    def _run_is_live(self, session_id: str) -> bool:
        try:
            return self.store.run_is_live(session_id)
        except AuditError:
            return True  # a busy database: ask again at the next tick
