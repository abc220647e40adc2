"""The approval history: answered approvals, newest first, and what undo could do for each.

Each row is one approval: the step it was about, its answer, and the checkpoint
taken before that step (◆ with its size, ◇ skipped, — none), ⟲ once the files
were put back to it.  The ``u`` key of the screen undoes the highlighted row's
step (:mod:`tui.step_undo`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from audit.undo_marks import UndoMark, size_text
from tui.step_undo import UndoTarget
from tui.store import AnsweredApproval, TuiStore, action_of
from tui.widgets.badges import undo_sign

COLUMNS = (("session", 8), ("#", 3), ("action", 24), ("answer", 18), ("checkpoint", 12))
Row = tuple[str, str, str, Text, Text]


class ApprovalHistory(DataTable[str | Text]):
    """Answered approvals of some sessions, newest first; rows keyed ``session:approval``."""

    def __init__(self, store: TuiStore, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self.store = store
        self._rows: list[tuple[str, Row]] = []
        self._targets: dict[str, UndoTarget] = {}

    def on_mount(self) -> None:
        self._ensure_columns()

    def show_sessions(self, session_ids: Sequence[str]) -> None:
        """Re-read the answered approvals of ``session_ids``; redraw only when they changed."""
        marks = {session_id: self.store.undo_marks(session_id) for session_id in session_ids}
        rows: list[tuple[str, Row]] = []
        targets: dict[str, UndoTarget] = {}
        for answered in self.store.answered_approvals(session_ids):
            key, row, target = _row(answered, marks[answered.approval.session_id])
            rows.append((key, row))
            if target is not None:
                targets[key] = target
        if rows != self._rows:
            self._redraw(rows)
        self._targets = targets

    def target_at_cursor(self) -> UndoTarget | None:
        """The step of the highlighted approval (None: no row)."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value or ""
        return self._targets.get(key)

    def _ensure_columns(self) -> None:
        if not self.columns:
            for label, width in COLUMNS:
                self.add_column(label, width=width)

    def _redraw(self, rows: list[tuple[str, Row]]) -> None:
        self._ensure_columns()
        chosen = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value \
            if self.row_count else None
        self.clear()
        for key, row in rows:
            self.add_row(*row, key=key)
        self._rows = rows
        keys = [key for key, _ in rows]
        if chosen in keys:
            self.move_cursor(row=keys.index(chosen))


def _row(answered: AnsweredApproval, marks: Sequence[UndoMark]) -> \
        tuple[str, Row, UndoTarget | None]:
    approval, step = answered.approval, answered.step
    index = step.index if step is not None else -1
    action = action_of(step)
    description = action.describe() if action is not None else approval.summary
    key = f"{approval.session_id}:{approval.id}"
    target = UndoTarget(approval.session_id, index, description) if step is not None else None
    return key, (approval.session_id[:8], str(index) if index >= 0 else "?", description,
                 _answer_text(answered), _checkpoint_cell(index, marks)), target


def _answer_text(answered: AnsweredApproval) -> Text:
    approval = answered.approval
    answer = approval.answer
    if answered.stale:
        return Text("stale: asked again", style="dim")
    if answer is None:
        return Text(f"{approval.status}: nobody", style="yellow")
    if not answer.approved:
        return Text(f"denied {answer.approver}", style="red")
    scope = " (session)" if answer.scope == "session" else ""
    return Text(f"approved {answer.approver}{scope}", style="green")


def _checkpoint_cell(index: int, marks: Sequence[UndoMark]) -> Text:
    taken = next((m for m in reversed(marks) if m.step == index
                  and m.kind in ("checkpoint", "skipped")), None)
    undone = any(m.kind == "rollback" and m.step == index for m in marks)
    if taken is None:
        return Text("—", style="dim")
    cell = Text.assemble(undo_sign(taken.kind), " ",
                         "skipped" if taken.kind == "skipped" else size_text(taken.size))
    if undone:
        cell.append_text(Text.assemble(" ", undo_sign("rollback")))
    return cell
