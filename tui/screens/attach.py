"""Attached to a database: watch runs that ``deskhand run`` started in other
terminals and answer their approvals from here."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Static

from audit.errors import AuditError
from audit.presence import ApproverPresence, AttachedApprover
from audit.records import SessionRecord
from tui.screens.approving import ApprovingScreen
from tui.step_undo import StepUndo
from tui.store import TuiStore
from tui.widgets.approval_history import ApprovalHistory
from tui.widgets.approval_queue import ApprovalQueue, Approver
from tui.widgets.frame_view import Picture, make_frame_view
from tui.widgets.session_table import started_text

RUNNING_COLUMNS = ("session", "started", "steps", "task")
# Runs appear and finish much less often than approvals arrive.
RUNNING_POLL_S = 1.0


class AttachScreen(ApprovingScreen):
    """Runs in progress in the database, their latest frame, the approval queue and the
    history of answered approvals, whose steps ``u`` undoes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("u", "undo_step", "Undo step"),
    ]

    def __init__(self, store: TuiStore, approver: Approver, *, graphics: str = "halfblock",
                 poll_s: float = 0.2, db_name: str = "",
                 presence: ApproverPresence | None = None) -> None:
        super().__init__()
        # While this screen is up, runs without a terminal know someone can answer.
        self.presence = presence
        self._attached: AttachedApprover | None = None
        self.store = store
        self.approver = approver
        self.graphics = graphics
        self.poll_s = poll_s
        self.db_name = db_name
        self.running: list[SessionRecord] = []
        self.undo = StepUndo(self, store, on_answer=self.refresh_history)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="attach-main"):
            with Vertical(id="attach-left"):
                yield DataTable(id="attach-running", cursor_type="row")
                yield Static("approval history — u undoes the highlighted step",
                             id="history-title")
                yield ApprovalHistory(self.store, id="approval-history")
            yield make_frame_view(self.graphics, id="attach-frame",
                                  placeholder="no run in progress")
        yield ApprovalQueue(self.store, self.approver, poll_s=self.poll_s,
                            graphics=self.graphics, id="approval-queue")
        yield Footer()

    def on_mount(self) -> None:
        if self.presence is not None:
            self._attached = self.presence.attach(self.approver.name)
        self.sub_title = f"attached to {self.db_name}"
        table: DataTable[str | Text] = self.query_one("#attach-running", DataTable)
        table.add_columns(*RUNNING_COLUMNS)
        self.refresh_running()
        self.set_interval(RUNNING_POLL_S, self.refresh_running)

    def on_unmount(self) -> None:
        if self._attached is not None:
            self._attached.detach()
            self._attached = None

    def refresh_running(self) -> None:
        """Re-read the runs in progress; redraw only when something changed."""
        running = self.store.running_sessions()
        if [(s.id, s.step_count) for s in running] == \
                [(s.id, s.step_count) for s in self.running]:
            return
        self.running = running
        table: DataTable[str | Text] = self.query_one("#attach-running", DataTable)
        table.clear()
        for session in running:
            table.add_row(session.id[:12], started_text(session.started_at),
                          str(session.step_count), session.task, key=session.id)
        self._show_latest_frame()
        self.refresh_history()

    def refresh_history(self) -> None:
        """Re-read the answered approvals (and their checkpoints) of the runs in progress."""
        try:
            self.query_one(ApprovalHistory).show_sessions([s.id for s in self.running])
        except AuditError as exc:
            self.notify(f"cannot read the audit log: {exc}", severity="warning")

    def on_approval_queue_answered(self, _message: ApprovalQueue.Answered) -> None:
        self.refresh_history()

    def action_undo_step(self) -> None:
        """Undo the step of the highlighted approval: confirm, then its run puts the files
        back (the run may be in another process: the request goes through the database)."""
        self.undo.ask(self.query_one(ApprovalHistory).target_at_cursor())

    def _show_latest_frame(self) -> None:
        view = self.query_one("#attach-frame")
        if not self.running:
            view.show(None)  # type: ignore[attr-defined]
            return
        steps = self.store.steps(self.running[0].id)
        shas = [s.frame_after_sha256 or s.frame_before_sha256 for s in steps]
        sha = next((s for s in reversed(shas) if s), None)
        image = self.store.frame(sha)
        view.show(Picture(key=sha, image=image)  # type: ignore[attr-defined]
                  if image is not None and sha else None)

