"""The sessions list: id, started, task, outcome, steps; filled page by page."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

from rich.text import Text
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable

from audit.records import SessionRecord
from tui.widgets.badges import outcome_text

COLUMNS = ("session", "started", "task", "outcome", "steps")
TASK_WIDTH = 60


class SessionTable(DataTable[str | Text]):
    """Sessions, newest first; rows are keyed by the full session id."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row")
        # When rows were last drawn (perf_counter seconds), for the benchmark.
        self.painted_at: float | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        lines = super().render_lines(crop)
        if self.row_count:
            self.painted_at = time.perf_counter()
        return lines

    def on_mount(self) -> None:
        self.add_columns(*COLUMNS)

    def add_sessions(self, sessions: Iterable[SessionRecord]) -> None:
        """Append a page of sessions."""
        for session in sessions:
            self.add_row(session.id[:12], started_text(session.started_at),
                         _one_line(_title(session)), outcome_text(session.outcome),
                         str(session.step_count), key=session.id)

    def session_id_at(self, row: int) -> str | None:
        """The full id of the session shown in ``row``."""
        if not 0 <= row < self.row_count:
            return None
        key = self.coordinate_to_cell_key(Coordinate(row, 0)).row_key
        return str(key.value)


def started_text(started_at: float) -> str:
    """A start time as local date and time, to the second."""
    return datetime.fromtimestamp(started_at).strftime("%Y-%m-%d %H:%M:%S")


def _title(session: SessionRecord) -> str:
    """The task, or for a suite attempt its suite, case, attempt and run (``deskhand test``)."""
    extra = session.extra
    if "suite" in extra and "case" in extra:
        return (f"{extra['suite']} › {extra['case']} #{extra.get('attempt', 1)} "
                f"(run {str(extra.get('run_id', ''))[:8]})")
    return session.task


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TASK_WIDTH else line[: TASK_WIDTH - 1] + "…"
