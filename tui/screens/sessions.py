"""The sessions browser: every recorded session, newest first.

Opening a database of thousands of sessions must feel instant, so the list
is read a page at a time: the first page when the screen mounts, the next
one when the cursor comes near the end of what is loaded.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui.store import TuiStore
from tui.widgets.session_table import SessionTable

PAGE_SIZE = 100
# Load the next page when the cursor is this close to the last loaded row.
PREFETCH_ROWS = 20


class SessionsScreen(Screen[None]):
    """List sessions; Enter replays one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "reload", "Reload"),
        Binding("g", "suite_runs", "Suite runs"),
    ]

    def __init__(self, store: TuiStore, *, page_size: int = PAGE_SIZE) -> None:
        super().__init__()
        self.store = store
        self.page_size = page_size
        self.loaded = 0
        self.exhausted = False
        self._oldest_started: float | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="sessions-count")
        yield SessionTable(id="sessions")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "sessions"
        self.action_reload()
        self.query_one(SessionTable).focus()

    def action_reload(self) -> None:
        """Forget what is loaded and read the first page again."""
        self.query_one(SessionTable).clear()
        self.loaded = 0
        self.exhausted = False
        self._oldest_started = None
        self.load_next_page()

    def action_suite_runs(self) -> None:
        """The ``deskhand test`` runs, grouped by run and case, with their statuses."""
        from tui.screens.suite_runs import SuiteRunsScreen

        self.app.push_screen(SuiteRunsScreen(self.store))

    def load_next_page(self) -> None:
        """Append the next (older) page of sessions, if any are left."""
        if self.exhausted:
            return
        page = self.store.sessions_before(self._oldest_started, self.page_size)
        self.query_one(SessionTable).add_sessions(page)
        self.loaded += len(page)
        self.exhausted = len(page) < self.page_size
        if page:
            self._oldest_started = page[-1].started_at
        self._show_count()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row >= self.loaded - min(PREFETCH_ROWS, self.page_size // 2):
            self.load_next_page()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        session_id = self.query_one(SessionTable).session_id_at(event.cursor_row)
        if session_id is not None:
            from tui.screens.replay import ReplayScreen

            self.app.push_screen(ReplayScreen(self.store, session_id,
                                              graphics=getattr(self.app, "graphics",
                                                               "halfblock")))

    def _show_count(self) -> None:
        if not self.loaded:
            text = "no sessions recorded yet"
        else:
            more = "" if self.exhausted else ", more below"
            text = (f"{self.loaded:,} sessions loaded{more} — Enter replays one, "
                    "g groups the suite runs")
        self.query_one("#sessions-count", Static).update(text)
