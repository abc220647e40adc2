"""The live step timeline: one row per finished step, newest at the bottom."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from agent.loop import StepReport
from tui.widgets.badges import decision_badge, status_text

# Fixed widths: a column that grew with its content would leave rows drawn
# before it grew cut at the old width, and the panel beside the frame is narrow.
COLUMNS = (("#", 3), ("action", 24), ("decision", 9), ("result", 7), ("ms", 6),
           ("approver / reason", 20))


class StepTimeline(DataTable[str | Text]):
    """Steps as they finish, with decision badges and timings."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)

    def on_mount(self) -> None:
        self._ensure_columns()

    def add_report(self, report: StepReport) -> None:
        """Append a finished step and keep it in view."""
        # A report may arrive before this table is mounted.
        self._ensure_columns()
        self.add_row(
            str(report.index),
            report.description,
            decision_badge(report.effect, report.status),
            status_text(report.status),
            f"{report.elapsed_ms:.0f}",
            _who_or_why(report),
            key=str(report.index),
        )
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
