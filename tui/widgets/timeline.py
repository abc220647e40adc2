"""The live step timeline: one row per finished step, newest at the bottom.

Checkpoints show as a sign beside the step they were taken before (◆, or ◇ when
skipped); a rollback (or a refused undo) is a row of its own, where the run
served it.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import DataTable

from agent.loop import StepReport
from audit.undo_marks import UndoMark
from tui.widgets.badges import decision_badge, status_text, undo_sign

# Fixed widths: a column that grew with its content would leave rows drawn
# before it grew cut at the old width, and the panel beside the frame is narrow.
COLUMNS = (("#", 3), ("", 1), ("action", 23), ("decision", 9), ("result", 7), ("ms", 6),
           ("approver / reason", 18))
MARK_COLUMN = 1
UNDO_ROW = "undo-"


class StepTimeline(DataTable[str | Text]):
    """Steps as they finish, with decision badges, timings and checkpoint marks."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self._checkpoints: dict[int, UndoMark] = {}
        self._shown_marks: set[int] = set()

    def on_mount(self) -> None:
        self._ensure_columns()

    def add_report(self, report: StepReport) -> None:
        """Append a finished step (and keep it in view while following the newest)."""
        # A report may arrive before this table is mounted.
        self._ensure_columns()
        following = self._following()
        mark = self._checkpoints.get(report.index)
        self.add_row(
            str(report.index),
            undo_sign(mark.kind) if mark else Text(" "),
            report.description,
            decision_badge(report.effect, report.status),
            status_text(report.status),
            f"{report.elapsed_ms:.0f}",
            _who_or_why(report),
            key=str(report.index),
        )
        self._keep_following(following)

    def show_marks(self, marks: Iterable[UndoMark]) -> None:
        """Mark the steps checkpoints were taken before; add a row for each rollback (or
        refused undo) not shown yet."""
        self._ensure_columns()
        for mark in marks:
            if mark.kind in ("checkpoint", "skipped"):
                self._mark_step(mark)
            elif mark.event_id not in self._shown_marks:
                self._shown_marks.add(mark.event_id)
                self._add_undo_row(mark)

    def step_at_cursor(self) -> int | None:
        """The index of the step on the highlighted row (None: no row, or a rollback's)."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value or ""
        return int(key) if key.isdigit() else None

    def _mark_step(self, mark: UndoMark) -> None:
        self._checkpoints[mark.step] = mark
        if str(mark.step) in self.rows:
            self.update_cell(str(mark.step), self.ordered_columns[MARK_COLUMN].key,
                             undo_sign(mark.kind))

    def _add_undo_row(self, mark: UndoMark) -> None:
        if mark.kind == "rollback":
            what, detail = f"undo to before step {mark.step}", "files put back"
        else:
            what, detail = "undo refused", mark.text.removeprefix("undo refused: ")
        following = self._following()
        self.add_row("", undo_sign(mark.kind), Text(what, style="magenta"), "", "", "",
                     detail, key=f"{UNDO_ROW}{mark.event_id}")
        self._keep_following(following)

    def _following(self) -> bool:
        """True while the cursor is on the newest row: new rows then take it along.  A row
        the user went back to stays highlighted (``u`` must undo the step they chose)."""
        return self.row_count == 0 or self.cursor_row >= self.row_count - 1

    def _keep_following(self, following: bool) -> None:
        if following:
            self.move_cursor(row=self.row_count - 1)

    def _ensure_columns(self) -> None:
        if not self.columns:
            for label, width in COLUMNS:
                self.add_column(label, width=width)


def _who_or_why(report: StepReport) -> str:
    if report.approver:
        return report.approver
    if report.status == "done":
        return ", ".join(report.rule_ids)
    return report.reason
