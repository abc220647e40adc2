"""The approval queue: every unanswered request in the audit database.

It polls the database (``pending_approvals``) on a timer, so it sees requests
from the run in this process and from ``deskhand run`` in any other terminal
alike; the oldest request is shown in detail and answered with one key.  The
first answer written to the database wins, whoever gave it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image
from textual.app import ComposeResult
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from audit.errors import AuditError
from audit.records import ApprovalRequest, Scope, StepRecord
from audit.render import draw_action
from sandbox.actions import Key, TypeText
from tui.imaging import crop_around
from tui.screen_words import WordsReader
from tui.store import TuiStore, action_of
from tui.widgets.approval_card import ApprovalCard
from tui.widgets.frame_view import Picture

# Small enough to stay legible as half blocks in the card, wide enough for context.
CROP_SIZE = (240, 150)


@dataclass(frozen=True, slots=True)
class Approver:
    """Who answers from this queue, as recorded in the audit log."""

    name: str
    channel: str


class ApprovalQueue(Widget):
    """Polls for pending approvals and answers the oldest one.

    Has CSS class ``empty`` while nothing waits.
    """

    class Answered(Message):
        """An answer was given here; ``won`` is False when another approver was first."""

        def __init__(self, request: ApprovalRequest, approved: bool, scope: Scope,
                     won: bool) -> None:
            super().__init__()
            self.request = request
            self.approved = approved
            self.scope = scope
            self.won = won

    def __init__(self, store: TuiStore, approver: Approver, *, poll_s: float = 0.2,
                 graphics: str = "halfblock", id: str | None = None,
                 classes: str | None = None, read_words: WordsReader | None = None) -> None:
        super().__init__(id=id, classes=classes)
        # Reads the words around the target (OCR) in a worker thread; by default the
        # app's reader (:attr:`tui.app.DeskhandApp.screen_words`), if it has one.
        self._read_words = read_words
        self.store = store
        self.approver = approver
        self.poll_s = poll_s
        self.graphics = graphics
        self.pending: list[ApprovalRequest] = []
        self._pictures: dict[int, Picture | None] = {}
        self._tasks: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="queue-title")
        yield ApprovalCard(graphics=self.graphics, id="approval-card")

    def on_mount(self) -> None:
        self._show_current()
        self.poll()
        self.set_interval(self.poll_s, self.poll)

    @property
    def current(self) -> ApprovalRequest | None:
        """The request the keys answer: the oldest one waiting."""
        return self.pending[0] if self.pending else None

    def poll(self) -> None:
        """Read the pending requests and show the oldest."""
        try:
            pending = self.store.pending()
        except AuditError as exc:
            # A locked or vanished database must not take the UI down; the
            # runs deny on their own when nobody answers in time.
            self.query_one("#queue-title", Static).update(f"cannot read approvals: {exc}")
            return
        changed = [r.id for r in pending] != [r.id for r in self.pending]
        self.pending = pending
        if changed:
            self._show_current()
        else:
            self.query_one(ApprovalCard).show_deadline()

    def answer(self, *, approved: bool, scope: Scope = "once") -> bool:
        """Answer the current request; True when this answer was the one recorded."""
        request = self.current
        if request is None:
            return False
        try:
            won = self.store.answer(request.id, approved=approved, scope=scope,
                                    approver=self.approver.name, channel=self.approver.channel)
        except AuditError as exc:
            self.notify(f"the answer was not recorded: {exc}", severity="error")
            return False
        if not won:
            self.notify("another approver answered first, or the request expired")
        self.post_message(self.Answered(request, approved, scope, won))
        self.poll()
        return won

    def save_full_frame(self, folder: Path | None = None) -> Path | None:
        """Write the current request's frame, full size with its target marked, as a PNG
        (in the temporary folder unless ``folder``); show the path on the card."""
        request = self.current
        image = self.store.frame(request.frame_sha256) if request is not None else None
        if request is None or image is None:
            self.notify("no frame stored for this request", severity="warning")
            return None
        step = self.store.step_for(request)
        path = (folder or Path(tempfile.gettempdir())) / \
            f"deskhand-approval-{request.id}-{request.frame_sha256[:12]}.png"
        draw_action(image, action_of(step), caption=False,
                    target=step.target_element if step else None).save(path, format="PNG")
        session = self.store.session(request.session_id)
        viewer = str(session.extra.get("viewer", "")) if session is not None else ""
        self.query_one(ApprovalCard).show_full_frame_path(path, viewer=viewer or None)
        return path

    def _show_current(self) -> None:
        request = self.current
        self.set_class(request is None, "empty")
        title = self.query_one("#queue-title", Static)
        if request is None:
            title.update("no approvals waiting")
            return
        more = len(self.pending) - 1
        title.update(f"approval needed ({more} more waiting)" if more else "approval needed")
        step = self.store.step_for(request)
        self.query_one(ApprovalCard).show(request, self._picture(request),
                                          task=self._task_of(request.session_id),
                                          step_index=step.index if step else None,
                                          typed_line=self._typed_line(request),
                                          window_title=self.store.window_title_for(request),
                                          reading_words=self.read_words is not None,
                                          target=step.target_element if step else None)
        self._read_words_of(request)
        self._forget_answered()

    def _picture(self, request: ApprovalRequest) -> Picture | None:
        if request.id not in self._pictures:
            self._pictures[request.id] = self._crop(request)
        return self._pictures[request.id]

    def _crop(self, request: ApprovalRequest) -> Picture | None:
        image = self.store.frame(request.frame_sha256)
        if image is None:
            return None
        step = self.store.step_for(request)
        action = action_of(step)
        crop, offset = crop_around(image, action, CROP_SIZE)
        return Picture(key=f"approval-{request.id}", image=crop, action=action, offset=offset,
                       target=step.target_element if step else None)

    @property
    def read_words(self) -> WordsReader | None:
        return self._read_words or getattr(self.app, "screen_words", None)

    def _read_words_of(self, request: ApprovalRequest) -> None:
        picture = self._picture(request)
        if picture is not None and self.read_words is not None:
            self.run_worker(partial(self._words_worker, request.id, picture.image),
                            thread=True, exclusive=True, group="approval-words")

    def _words_worker(self, approval_id: int, image: Image.Image) -> None:
        reader = self.read_words
        words = reader(image) if reader is not None else ""
        self.app.call_from_thread(self._show_words, approval_id, words)

    def _show_words(self, approval_id: int, words: str) -> None:
        if self.current is not None and self.current.id == approval_id:
            self.query_one(ApprovalCard).show_words(words)

    def _typed_line(self, request: ApprovalRequest) -> str | None:
        """For typing: the line as it will read on screen, with what this step adds."""
        step = self.store.step_for(request)
        if step is None or step.action_type != "type" or step.secret:
            return None
        return reconstructed_line(self.store.steps(request.session_id), step)

    def _task_of(self, session_id: str) -> str:
        if session_id not in self._tasks:
            session = self.store.session(session_id)
            self._tasks[session_id] = session.task if session else ""
        return self._tasks[session_id]

    def _forget_answered(self) -> None:
        waiting = {r.id for r in self.pending}
        for approval_id in [i for i in self._pictures if i not in waiting]:
            del self._pictures[approval_id]


def reconstructed_line(steps: Sequence[StepRecord], asking: StepRecord) -> str:
    """The text on the current input line once ``asking`` (a type step) runs: what the
    steps before it typed since the last Enter, then its own text.

    Keys other than Enter and typing that did not run are left out: this is
    what deskhand typed, not a reading of the screen.
    """
    typed = ""
    for step in steps:
        if step.id == asking.id:
            break
        if step.status != "done" or step.action is None:
            continue
        if isinstance(step.action, TypeText) and not step.secret:
            typed += step.action.text
        elif isinstance(step.action, Key) and _is_enter(step.action.keys):
            typed += "\n"
    own = asking.action.text if isinstance(asking.action, TypeText) else ""
    line = (typed.rsplit("\n", 1)[-1] + own.split("\n", 1)[0])
    return line + ("⏎" if "\n" in own else "")


def _is_enter(keys: list[str]) -> bool:
    return [k.lower() for k in keys] in (["enter"], ["return"])
